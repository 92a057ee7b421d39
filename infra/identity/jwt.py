"""JwtTokenVerifier (pyjwt) and the development token issuer.

Algorithms are pinned by settings and never taken from the token; exp, iat, sub, iss and aud
are required. HS* verifies with the shared secret; RS*/ES* with keys from a JWKS URL
(infra/identity/jwks.py: cached, refetched at most once per interval for unknown kids, weak keys ignored).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from infra.identity.jwks import JwksKeys
from infra.settings import TokenConfig
from services.core.auth import Principal
from services.core.errors import Unauthenticated

REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
MAX_SUBJECT_LENGTH = 128


class JwtTokenVerifier:
    def __init__(self, config: TokenConfig) -> None:
        self._algorithms = list(config.algorithms)
        self._issuer = config.issuer
        self._audience = config.audience
        self._leeway = config.leeway_s
        self._secret = config.secret.get_secret_value() if config.secret else None
        self._jwks: JwksKeys | None = None
        if config.jwks_url:
            self._jwks = JwksKeys(
                config.jwks_url, cache_s=config.jwks_cache_s, min_refetch_s=config.jwks_min_refetch_s
            )

    async def verify(self, token: str) -> Principal:
        try:
            key: Any = self._secret
            algorithms = self._algorithms
            if self._jwks is not None:
                key = await self._jwks.key(jwt.get_unverified_header(token).get("kid"))
                # The kid picks the key, the key fixes the algorithms: an ES256 token naming an
                # RSA key is refused here, not handed to a verifier that cannot use that key.
                algorithms = [alg for alg in self._algorithms if key is not None and _fits(alg, key)]
                if not algorithms:
                    raise Unauthenticated("invalid or expired token")
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            # Raised only once the signature checked out: it tells nothing about forged tokens.
            raise Unauthenticated("invalid or expired token", reason="TOKEN_EXPIRED") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            # The reason stays server-side: clients learn only that the token was refused.
            raise Unauthenticated("invalid or expired token") from exc
        return principal_from_claims(claims)


_CURVES = {"ES256": ec.SECP256R1, "ES256K": ec.SECP256K1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


def _fits(algorithm: str, key: Any) -> bool:
    """Whether `algorithm` can verify with `key` (a public key from the JWKS)."""
    if algorithm.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm in _CURVES:
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CURVES[algorithm])
    if algorithm == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    return False


@functools.lru_cache(maxsize=256)
def _role_set(roles: tuple[str, ...]) -> frozenset[str]:
    # Few distinct role sets exist; every open WebSocket keeps its principal's.
    return frozenset(roles)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The principal of verified claims; a subject that is not a short string is refused."""
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
        raise Unauthenticated("invalid or expired token")
    roles = claims.get("roles") or []
    return Principal(
        user_id=subject,
        roles=_role_set(tuple(r for r in roles if isinstance(r, str))),
        expires_at=float(claims["exp"]),
    )


def issue_dev_token(
    config: TokenConfig, user_id: str, *, ttl_s: int = 3600, roles: tuple[str, ...] = ()
) -> str:
    """A token the HS* development verifier accepts. Refuses to run without a secret."""
    if config.secret is None or not config.algorithms[0].startswith("HS"):
        raise RuntimeError("dev tokens need HS* algorithms and MEDIAGRAPH_JWT_SECRET")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": config.issuer,
        "aud": config.audience,
        "iat": now,
        "exp": now + ttl_s,
    }
    if roles:
        claims["roles"] = list(roles)
    return jwt.encode(claims, config.secret.get_secret_value(), algorithm=config.algorithms[0])
