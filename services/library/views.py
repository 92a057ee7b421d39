"""View audit: how many times media was viewed, and by whom (a bounded log for the owner).

A view is counted on `media(id)` by anyone but the owner; the same viewer again within the
dedupe window counts once. Counting happens beside the read, never in its way: the resolver
starts it and returns; counts land in Redis first and a periodic flush adds them to the
durable counter, so `viewCount` = durable + pending.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from services.core.auth import Principal, require
from services.core.errors import NotFound
from services.core.media import Media, utcnow
from services.core.pagination import CursorCodec, page_size
from services.core.ports import EngagementStore, MediaRepository, ViewRecorder

log = logging.getLogger("mediagraph.views")


@dataclass(frozen=True, slots=True)
class ViewPage:
    views: list[tuple[str, datetime]]
    cursors: list[str]
    has_next_page: bool


class ViewService:
    def __init__(
        self,
        recorder: ViewRecorder,
        store: EngagementStore,
        repo: MediaRepository,
        cursors: CursorCodec,
        *,
        window_s: int = 600,
    ) -> None:
        self._recorder = recorder
        self._store = store
        self._repo = repo
        self._cursors = cursors
        self._window_s = window_s
        self._tasks: set[asyncio.Task[bool]] = set()

    def viewed_later(self, viewer: Principal | None, media: Media) -> None:
        """Count the view beside the read: the caller does not wait for it."""
        if viewer is None or viewer.user_id == media.owner_id:
            return
        task = asyncio.create_task(self.viewed(viewer, media))
        self._tasks.add(task)  # a reference, so the task is not collected midway
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[bool]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a view could not be counted", exc_info=task.exception())

    async def viewed(self, viewer: Principal | None, media: Media) -> bool:
        """Count one view of media the viewer was shown; True if it counted."""
        if viewer is None or viewer.user_id == media.owner_id:
            return False
        return await self._recorder.record(media.id, viewer.user_id, utcnow(), window_s=self._window_s)

    async def pending(self, media_ids: list[str]) -> dict[str, int]:
        return await self._recorder.pending(media_ids)

    async def flush(self) -> int:
        """Move pending counts to the durable counter; returns how many views moved."""
        counts = await self._recorder.take_pending()
        if counts:
            await self._store.add_views(counts)
        return sum(counts.values())

    async def log(
        self, viewer: Principal | None, media_id: str, *, first: int | None, after: str | None
    ) -> ViewPage:
        """Who viewed the caller's media and when, newest first. Raises NotFound for anyone else."""
        principal = require(viewer)
        media = await self._repo.get(media_id)
        if media is None or (media.owner_id != principal.user_id and not principal.is_admin):
            raise NotFound("media not found")
        scope = f"mediaViews|{principal.user_id}|{media_id}"
        limit = page_size(first)
        position = self._cursors.decode(after, scope)
        offset = int(position) if position else 0
        views, more = await self._recorder.log(media_id, offset=offset, limit=limit)
        cursors = [self._cursors.encode(str(offset + i + 1), scope) for i in range(len(views))]
        return ViewPage(views, cursors, more)
