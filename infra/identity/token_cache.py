"""Verified access tokens, remembered until they expire (at most `max_age_s`).

Every request carries its bearer token, and verifying it costs two JWT decodes and a signature
check (ES256 for the service's own tokens): about a sixth of a `media(id)` read. A client sends
the same token for its whole life, so the API keeps the principal of each token it verified,
keyed by the exact token string, and answers the next request with the same token from memory.

Exact: a token is only ever accepted again before its own `exp` (no leeway) and within
`max_age_s` of its verification, so a key withdrawn from the identity provider's JWKS stops its
tokens at most `max_age_s` later than it would have without the cache (the JWKS itself is cached
longer: MEDIAGRAPH_JWKS_CACHE_S). Refusals are never remembered: a bad token is checked (and
refused) every time. The memory is bounded (least recently used entries go first).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from services.core.auth import Principal
from services.core.ports import TokenVerifier


class CachedTokenVerifier:
    def __init__(self, inner: TokenVerifier, *, max_age_s: float = 60.0, max_entries: int = 10_000) -> None:
        self._inner = inner
        self._max_age_s = max_age_s
        self._max_entries = max_entries
        self._known: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        now = time.time()
        known = self._known.get(token)
        if known is not None:
            principal, until = known
            if now < until:
                self._known.move_to_end(token)
                return principal
            del self._known[token]
        principal = await self._inner.verify(token)  # raises Unauthenticated: nothing remembered
        until = now + self._max_age_s
        if principal.expires_at is not None:
            until = min(until, principal.expires_at)
        self._known[token] = (principal, until)
        if len(self._known) > self._max_entries:
            self._known.popitem(last=False)
        return principal
