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
        return (await self.urls([(media, key)]))[0]

    async def urls(self, wanted: list[tuple[Media, str]]) -> list[str]:
        """A URL for each (media, object key): one cache read for all, one write for the new."""
        entries = [(media.owner_id, f"{media.id}:{media.version}:{key}") for media, key in wanted]
        now = utcnow()
        cached: list[CachedUrl | None] = [None] * len(wanted)
        if self._cache is not None and entries:
            cached = await self._cache.get_many(entries)
        found: list[str] = []
        fresh: list[tuple[str, str, CachedUrl]] = []
        expires = now + timedelta(seconds=self._ttl_s)
        for (_, key), (owner_id, cache_key), hit in zip(wanted, entries, cached, strict=True):
            if hit is not None and hit.expires_at - now > self._min_remaining:
                found.append(hit.url)
                continue
            url = await self._signer.sign(key, expires_in=self._ttl_s)
            fresh.append((owner_id, cache_key, CachedUrl(url, expires)))
            found.append(url)
        if self._cache is not None and fresh:
            await self._cache.put_many(fresh)
        return found

    async def forget(self, *owner_ids: str) -> None:
        if self._cache is not None:
            for owner_id in owner_ids:
                await self._cache.forget_owner(owner_id)
