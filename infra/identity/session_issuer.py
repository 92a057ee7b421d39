"""The service as a token issuer: an ES256 key (from settings; generated per process in
development), access tokens signed with it, its public half as a JWKS at
/.well-known/jwks.json, and a verifier that takes both its own tokens and the upstream ones."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from infra.identity.jwt import REQUIRED_CLAIMS, principal_from_claims
from services.core.auth import Principal
from services.core.errors import Unauthenticated
from services.core.ports import TokenVerifier

ALGORITHM = "ES256"


class SessionIssuer:
    def __init__(self, private_key_pem: str | None, *, issuer: str, audience: str, ttl_s: int) -> None:
        if private_key_pem:
            key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
                raise ValueError("MEDIAGRAPH_SESSION_SIGNING_KEY must be an EC P-256 private key (PEM)")
            self._key = key
        else:
            self._key = ec.generate_private_key(ec.SECP256R1())  # development: per process
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        self._public = self._key.public_key()
        jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._public))
        # RFC 7638 thumbprint: a kid that changes exactly when the key does.
        canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
        self._jwk = {**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._jwk]}

    def issue(self, principal: Principal) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": principal.user_id,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.ttl_s,
        }
        if principal.roles:
            claims["roles"] = sorted(principal.roles)
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(self, token: str, leeway: int) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            # Raised only once the signature checked out: it tells nothing about forged tokens.
            raise Unauthenticated("invalid or expired token", reason="TOKEN_EXPIRED") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            # The reason stays server-side: clients learn only that the token was refused.
            raise Unauthenticated("invalid or expired token") from exc
        return principal_from_claims(claims)


class IssuerAwareVerifier:
    """Tokens this service issued are checked with its own key (ES256 only); all others go to
    the upstream verifier, with its own pinned algorithms."""

    def __init__(self, own: SessionIssuer, upstream: TokenVerifier, *, leeway: int) -> None:
        self._own = own
        self._upstream = upstream
        self._leeway = leeway

    async def verify(self, token: str) -> Principal:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid or expired token") from exc
        if unverified.get("iss") == self._own.issuer:
            return self._own.verify(token, self._leeway)
        return await self._upstream.verify(token)
