"""JwksKeys: an identity provider's signing keys, fetched from its JWKS URL and cached.

Known keys are reused for `cache_s`; a rotated key (an unknown `kid`) triggers a refetch, but
at most one fetch per `min_refetch_s`, however many tokens with invented kids arrive: otherwise
every forged token would cost a request to the provider. Keys too weak to trust (RSA under 2048
bits, symmetric keys) are left out of the set. Fetches run in a thread (urllib blocks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

log = logging.getLogger("mediagraph.jwks")

MIN_RSA_BITS = 2048


class JwksKeys:
    def __init__(
        self,
        url: str,
        *,
        cache_s: float,
        min_refetch_s: float,
        timeout_s: float = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=timeout_s)
        self._cache_s = cache_s
        self._min_refetch_s = min_refetch_s
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str | None) -> Any | None:
        """The verification key for `kid`, or None when there is none to be had (now)."""
        if not isinstance(kid, str) or not kid:
            return None
        now = self._clock()
        fresh = self._fetched_at is not None and now - self._fetched_at < self._cache_s
        if kid in self._keys and fresh:
            return self._keys[kid].key
        async with self._lock:
            now = self._clock()
            if self._tried_at is None or now - self._tried_at >= self._min_refetch_s:
                await self._fetch(now)
        found = self._keys.get(kid)
        return found.key if found is not None else None

    async def _fetch(self, now: float) -> None:
        self._tried_at = now
        self.fetches += 1
        try:
            data = await asyncio.to_thread(self._client.fetch_data)
            keys = jwt.PyJWKSet.from_dict(data).keys
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, OSError, ValueError) as exc:
            # Keep the keys we have: a provider outage must not sign everyone out.
            log.warning("JWKS fetch failed", extra={"error": str(exc)})
            return
        accepted: dict[str, jwt.PyJWK] = {}
        for key in keys:
            if key.key_id is None or not _strong(key):
                log.warning("JWKS key ignored", extra={"kid": key.key_id, "kty": key.key_type})
                continue
            accepted[key.key_id] = key
        self._keys = accepted
        self._fetched_at = now


def _strong(key: jwt.PyJWK) -> bool:
    if key.key_type == "RSA":
        return isinstance(key.key, RSAPublicKey) and key.key.key_size >= MIN_RSA_BITS
    return key.key_type in ("EC", "OKP")
