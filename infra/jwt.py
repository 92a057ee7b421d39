"""JwtTokenVerifier (pyjwt) and the development token issuer.

Algorithms are pinned by settings and never taken from the token; exp, iat, sub, iss and aud
are required. HS* verifies with the shared secret; RS*/ES* with keys from a JWKS URL, fetched
off the event loop (PyJWKClient uses blocking urllib) and cached by PyJWKClient.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt

from infra.settings import Settings
from services.auth import Principal
from services.errors import Unauthenticated

REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
MAX_SUBJECT_LENGTH = 128


class JwtTokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._algorithms = list(settings.jwt_algorithms)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_s
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.jwt_jwks_url, cache_keys=True, lifespan=settings.jwks_cache_s
            )

    async def verify(self, token: str) -> Principal:
        try:
            key: Any = self._secret
            if self._jwks is not None:
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key = signing_key.key
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            # The reason stays server-side: clients learn only that the token was refused.
            raise Unauthenticated("invalid or expired token") from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
            raise Unauthenticated("invalid or expired token")
        roles = claims.get("roles") or []
        return Principal(
            user_id=subject,
            roles=frozenset(r for r in roles if isinstance(r, str)),
            expires_at=float(claims["exp"]),
        )


def issue_dev_token(
    settings: Settings, user_id: str, *, ttl_s: int = 3600, roles: tuple[str, ...] = ()
) -> str:
    """A token the HS* development verifier accepts. Refuses to run without a secret."""
    if settings.jwt_secret is None or not settings.jwt_algorithms[0].startswith("HS"):
        raise RuntimeError("dev tokens need HS* algorithms and MEDIAGRAPH_JWT_SECRET")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl_s,
    }
    if roles:
        claims["roles"] = list(roles)
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithms[0])
