"""Reading media bytes in a replica region (docs/multi-region.md).

A replica region's bucket receives objects by S3 Cross-Region Replication, seconds to minutes
after the home region's bucket. `ReplicaAwareBlobStore` is that region's bucket, except that a
read URL (and a HEAD) falls back to the home bucket while the object has not replicated yet:

    t0        object COMPLETED in the home region (bucket H)
    t0 + ~1 s row replicated: the replica API lists the media; url → H (HEAD here: 404, cached
              `miss_ttl_s`)
    t0 + Δcrr replica lands in this region's bucket R
    later     next URL after the miss expires: HEAD here: 200 (cached `hit_ttl_s`) → url → R

Keys are never overwritten (If-None-Match), so a "present" answer stays true until a purge,
which removes the row as well. Everything but reads works on this region's bucket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from cachetools import TLRUCache

from infra.aws.s3 import S3BlobStore
from services.core.ports import BlobInfo

log = logging.getLogger("mediagraph.regions")
MAX_REMEMBERED = 10_000


class ReplicaAwareBlobStore(S3BlobStore):
    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        home: S3BlobStore,
        hit_ttl_s: float = 300.0,
        miss_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client, bucket)
        self._home = home
        self._hit_ttl_s = hit_ttl_s
        self._miss_ttl_s = miss_ttl_s
        # key → present here; each answer believed for its own lifetime (a hit longer than a
        # miss), the least recently used dropped first beyond MAX_REMEMBERED.
        self._known: TLRUCache[str, bool] = TLRUCache(MAX_REMEMBERED, self._lifetime, timer=clock)

    async def presign_get(self, key: str, *, expires_in: int) -> str:
        if await self.replicated(key):
            return await super().presign_get(key, expires_in=expires_in)
        return await self._home.presign_get(key, expires_in=expires_in)

    async def head(self, key: str) -> BlobInfo | None:
        info = await super().head(key)
        return info if info is not None else await self._home.head(key)

    async def replicated(self, key: str) -> bool:
        """Whether `key` exists in this region's bucket; the answer is cached briefly. An error
        asking (this region's S3 degraded) counts as "not here" and is not cached."""
        known = self._known.get(key)
        if known is not None:
            return known
        try:
            present = await S3BlobStore.head(self, key) is not None
        except Exception:
            log.warning("HEAD in the local replica failed; reading from the home bucket", exc_info=True)
            return False
        self._known[key] = present
        return present

    def _lifetime(self, key: str, present: bool, now: float) -> float:
        return now + (self._hit_ttl_s if present else self._miss_ttl_s)
