"""Likes: one per user per media, counted exactly."""

from __future__ import annotations

from services.core.auth import Principal, require
from services.core.media import Media
from services.core.ports import EngagementStore, MediaStats, ViewRecorder
from services.library.gallery import GalleryService


class EngagementService:
    def __init__(
        self, store: EngagementStore, gallery: GalleryService, views: ViewRecorder | None = None
    ) -> None:
        self._store = store
        self._gallery = gallery
        self._views = views

    async def like(self, viewer: Principal | None, media_id: str) -> Media:
        """Like media the viewer may see (liking twice counts once). Raises NotFound."""
        principal = require(viewer)
        media = await self._gallery.get(principal, media_id)
        await self._store.like(media.id, principal.user_id)
        return media

    async def unlike(self, viewer: Principal | None, media_id: str) -> Media:
        principal = require(viewer)
        media = await self._gallery.get(principal, media_id)
        await self._store.unlike(media.id, principal.user_id)
        return media

    async def stats(self, media_ids: list[str]) -> dict[str, MediaStats]:
        """Durable counters plus views counted but not flushed yet."""
        stats = await self._store.stats(media_ids)
        if self._views is None:
            return stats
        pending = await self._views.pending(media_ids)
        return {
            media_id: MediaStats(
                like_count=stats.get(media_id, MediaStats()).like_count,
                view_count=stats.get(media_id, MediaStats()).view_count + pending.get(media_id, 0),
            )
            for media_id in media_ids
            if media_id in stats or media_id in pending  # absent stays absent (zero)
        }

    async def liked_by(self, viewer: Principal | None, media_ids: list[str]) -> set[str]:
        if viewer is None:
            return set()
        return await self._store.liked(viewer.user_id, media_ids)
