"""Sessions: the service as its own token issuer.

exchange(idToken) verifies an ID token of the upstream identity provider and opens a session:
a short-lived access token signed by this service, and a refresh token. refresh() rotates the
refresh token: each one works once; presenting a spent one again (a stolen copy, or the thief's
copy used after the owner's) revokes the whole family, so both parties are signed out. Rotation
is atomic in the store: of two concurrent refreshes of one token exactly one wins.

Refresh tokens are random, opaque and stored only as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol

from services.core.auth import Principal
from services.core.errors import BadUserInput, Unauthenticated


@dataclass(frozen=True, slots=True)
class SessionTokens:
    access_token: str
    expires_in: int  # seconds
    refresh_token: str


class IdTokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The principal of an upstream ID token. Raises Unauthenticated."""
        ...


class AccessTokenIssuer(Protocol):
    ttl_s: int

    def issue(self, principal: Principal) -> str:
        """A signed access token for `principal`, valid `ttl_s` seconds."""
        ...


class RefreshTokenStore(Protocol):
    async def open(self, family_id: str, token_hash: str, principal: Principal) -> None:
        """Start a family with its first refresh token."""
        ...

    async def rotate(self, token_hash: str, new_hash: str) -> Principal:
        """Spend `token_hash` and make `new_hash` its successor, atomically. Raises
        Unauthenticated for an unknown or revoked token, and for a spent one (whose family is
        revoked on the spot)."""
        ...

    async def revoke(self, token_hash: str) -> bool:
        """Revoke the family of `token_hash`; False if there was none."""
        ...


# Refresh tokens carry a prefix: a log formatter (infra/observability/logs.py) or a secret
# scanner recognises them wherever they turn up, whatever field or message holds them.
REFRESH_TOKEN_PREFIX = "mgrt_"  # noqa: S105  # a prefix, not a secret


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionService:
    def __init__(
        self, upstream: IdTokenVerifier, issuer: AccessTokenIssuer, store: RefreshTokenStore
    ) -> None:
        self._upstream = upstream
        self._issuer = issuer
        self._store = store

    async def exchange(self, id_token: str) -> SessionTokens:
        """Open a session for the owner of an upstream ID token. Raises Unauthenticated."""
        principal = await self._upstream.verify(id_token)
        refresh = new_refresh_token()
        await self._store.open(secrets.token_hex(16), _hash(refresh), principal)
        return self._tokens(principal, refresh)

    async def refresh(self, refresh_token: str) -> SessionTokens:
        """A new access token and the next refresh token. Raises Unauthenticated (unknown,
        revoked or reused refresh token; a reuse revokes the family)."""
        if not refresh_token or len(refresh_token) > 256:
            raise Unauthenticated("invalid refresh token")
        refresh = new_refresh_token()
        principal = await self._store.rotate(_hash(refresh_token), _hash(refresh))
        return self._tokens(principal, refresh)

    async def revoke(self, refresh_token: str) -> bool:
        """Sign out: the refresh token's family ends. False if it was unknown."""
        if not refresh_token or len(refresh_token) > 256:
            return False
        return await self._store.revoke(_hash(refresh_token))

    def _tokens(self, principal: Principal, refresh: str) -> SessionTokens:
        return SessionTokens(
            access_token=self._issuer.issue(principal), expires_in=self._issuer.ttl_s, refresh_token=refresh
        )


class Sessions(Protocol):
    """What the GraphQL layer asks of sessions: SessionService, or SessionsDisabled."""

    async def exchange(self, id_token: str) -> SessionTokens: ...

    async def refresh(self, refresh_token: str) -> SessionTokens: ...

    async def revoke(self, refresh_token: str) -> bool: ...


class SessionsDisabled:
    """Sessions on a server without an upstream identity provider (MEDIAGRAPH_IDP_JWKS_URL
    unset): every call is refused with a reason the client can act on."""

    async def exchange(self, id_token: str) -> SessionTokens:
        raise _disabled()

    async def refresh(self, refresh_token: str) -> SessionTokens:
        raise _disabled()

    async def revoke(self, refresh_token: str) -> bool:
        raise _disabled()


def _disabled() -> BadUserInput:
    return BadUserInput("sessions are not configured on this server", reason="SESSIONS_DISABLED")
