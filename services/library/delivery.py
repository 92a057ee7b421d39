"""Minting read URLs for media bytes, and reusing them while they are fresh enough.

A URL is minted only after the viewer passed the visibility check, and is cached per object key
and owner generation; the key of a record changes with its version, so a visibility change or a
delete (both bump the version) and an unfriend or block (which bump the owner's generation)
stop every cached URL from being handed to anyone new. A URL already handed out keeps working
until its own short expiry: signed URLs cannot be recalled.
"""

from __future__ import annotations

from datetime import timedelta

from services.core.media import Media, utcnow
from services.core.ports import CachedUrl, UrlCache, UrlSigner


class UrlMinter:
    def __init__(
        self, signer: UrlSigner, cache: UrlCache | None, *, ttl_s: int, reuse_fraction: float = 0.5
    ) -> None:
        self._signer = signer
        self._cache = cache
        self._ttl_s = ttl_s
        # A cached URL is reused while more than this share of its lifetime remains.
        self._min_remaining = timedelta(seconds=ttl_s * reuse_fraction)

    async def url(self, media: Media, key: str) -> str:
        cache_key = f"{media.id}:{media.version}:{key}"
        now = utcnow()
        if self._cache is not None:
            cached = await self._cache.get(media.owner_id, cache_key)
            if cached is not None and cached.expires_at - now > self._min_remaining:
                return cached.url
        url = await self._signer.sign(key, expires_in=self._ttl_s)
        if self._cache is not None:
            expires = now + timedelta(seconds=self._ttl_s)
            await self._cache.put(media.owner_id, cache_key, CachedUrl(url, expires))
        return url

    async def forget(self, *owner_ids: str) -> None:
        if self._cache is not None:
            for owner_id in owner_ids:
                await self._cache.forget_owner(owner_id)
