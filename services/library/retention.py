"""Delete, restore, the trash, and the purge that makes deletion final.

A soft delete moves the record to DELETED (its counters move with it, in the same write) and
stamps `purge_after`; until then `restore` brings back the status it had, and with it every
list, search, URL and counter (tag items, likes and stats were never touched). After it, the
purge removes everything. The purge of one media, and why a crash or a second purger is safe:

    1 claim    conditional write (version) sets purge_lease_until = now + lease; a purger that
               loses the race gets Conflict and skips; a lease still running is skipped too
    2 bytes    every version of the original, derived/<id>/, quarantine/<id>, an open multipart
    3 likes    the engagement items (LIKE#*, STATS)
    4 audit    the tombstone, with a fixed id: written twice, kept once
    5 record   record + tag items + counter decrement, in one transaction, conditional on the
               version of step 1: a purger whose lease ran out and was taken over fails here

A crash anywhere before 5 leaves the record (DELETED, leased): once the lease expires the
next run claims it again and redoes 2-5, each of which is idempotent. After 5 nothing is left
but the audit log.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.core.audit import SYSTEM_ACTOR, TOMBSTONE_ID, AuditAction, Auditor
from services.core.auth import Principal, require
from services.core.errors import Conflict, NotFound
from services.core.events import MediaEvent, MediaEventType
from services.core.media import Media, MediaStatus, utcnow
from services.core.pagination import CursorCodec, page_size
from services.core.ports import BlobStore, EngagementStore, EventBus, ListFilter, MediaRepository
from services.library.gallery import MediaPage

log = logging.getLogger("mediagraph.retention")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    retention: timedelta = timedelta(days=30)
    purge_lease: timedelta = timedelta(minutes=5)


def blob_prefixes(media: Media) -> list[str]:
    """Everything in the bucket that belongs to one media: the original and what derives from it."""
    return [media.object_key, f"derived/{media.id}/", f"quarantine/{media.id}"]


class RetentionService:
    def __init__(
        self,
        repo: MediaRepository,
        blobs: BlobStore,
        bus: EventBus,
        engagement: EngagementStore,
        auditor: Auditor,
        cursors: CursorCodec,
        policy: RetentionPolicy | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._repo = repo
        self._blobs = blobs
        self._bus = bus
        self._engagement = engagement
        self._auditor = auditor
        self._cursors = cursors
        self._policy = policy or RetentionPolicy()
        self._clock = clock

    async def delete(self, viewer: Principal | None, media_id: str) -> Media:
        """Move the media to the trash. Owner or admin. Raises Unauthenticated, NotFound
        (absent, someone else's, already deleted), Conflict (changed meanwhile: retry)."""
        principal = require(viewer)
        media = await self._repo.get(media_id)
        if media is None or media.status is MediaStatus.DELETED or not _may_act(principal, media):
            raise NotFound("media not found")
        now = self._clock()
        deleted = media.soft_delete(now, principal.user_id, now + self._policy.retention)
        event = MediaEvent(MediaEventType.DELETED, deleted, now)
        try:
            await self._repo.save(deleted, expected_version=media.version, previous=media, events=(event,))
        except Conflict:
            raise Conflict("media changed meanwhile; refetch and retry") from None
        await self._bus.publish(event)
        await self._auditor.record(
            deleted, principal.user_id, AuditAction.DELETED, now, {"status": (media.status.value, "DELETED")}
        )
        return deleted

    async def restore(self, viewer: Principal | None, media_id: str) -> Media:
        """Bring deleted media back as it was. Owner or admin. Raises Unauthenticated, NotFound,
        Conflict (not deleted, past its retention window, or being purged)."""
        principal = require(viewer)
        media = await self._repo.get(media_id)
        if media is None or not _may_act(principal, media):
            raise NotFound("media not found")
        now = self._clock()
        if media.status is not MediaStatus.DELETED:
            raise Conflict("media is not deleted", status=media.status.value)
        if media.purge_after is None or media.purge_after <= now or media.purge_lease_until is not None:
            raise Conflict("the retention window is over: the media is (being) purged")
        restored = media.restored(now)
        event = MediaEvent(MediaEventType.RESTORED, restored, now)
        try:
            await self._repo.save(restored, expected_version=media.version, previous=media, events=(event,))
        except Conflict:
            raise Conflict("media changed meanwhile; refetch and retry") from None
        await self._bus.publish(event)
        await self._auditor.record(
            restored,
            principal.user_id,
            AuditAction.RESTORED,
            now,
            {"status": ("DELETED", restored.status.value)},
        )
        return restored

    async def trash(self, viewer: Principal | None, *, first: int | None, after: str | None) -> MediaPage:
        """The caller's deleted media, newest first. Raises Unauthenticated, BadUserInput."""
        principal = require(viewer)
        limit = page_size(first)
        scope = f"deletedMedia|{principal.user_id}"
        page = await self._repo.list_by_owner(
            principal.user_id,
            limit=limit,
            after=self._cursors.decode(after, scope),
            filter=ListFilter(status=MediaStatus.DELETED),
        )
        cursors = [self._cursors.encode(self._repo.position_of(m), scope) for m in page.items]
        end = self._cursors.encode(page.last_position, scope) if page.last_position else None
        counts = await self._repo.count_by_status(principal.user_id)
        return MediaPage(page.items, cursors, page.has_more, end, max(0, counts.get(MediaStatus.DELETED, 0)))

    async def purge_due(self, *, limit: int = 100, now: datetime | None = None) -> int:
        """Purge deleted media whose window is over (at `now`, default the clock), soonest due
        first; returns how many."""
        now = now or self._clock()
        purged = 0
        for media in await self._repo.oldest_with_status(MediaStatus.DELETED, limit=limit):
            if media.purge_after is None or media.purge_after > now:
                break  # listed by purge_after: the rest are not due either
            if await self.purge(media, now=now):
                purged += 1
        return purged

    async def purge(self, media: Media, *, now: datetime) -> bool:
        """Purge one due media; False if another purger holds it or got there first."""
        if media.status is not MediaStatus.DELETED or media.purge_after is None or media.purge_after > now:
            return False
        if media.purge_lease_until is not None and media.purge_lease_until > now:
            return False
        claimed = dataclasses.replace(media, purge_lease_until=now + self._policy.purge_lease)
        claimed = claimed.edit(now)
        try:
            await self._repo.save(claimed, expected_version=media.version, previous=media)
        except Conflict:
            return False
        if media.multipart_upload_id is not None:
            await self._blobs.abort_multipart(media.object_key, media.multipart_upload_id)
        for prefix in blob_prefixes(media):
            await self._blobs.delete_all_versions(prefix)
        await self._engagement.forget(media.id)
        await self._auditor.record(
            media,
            SYSTEM_ACTOR,
            AuditAction.PURGED,
            now,
            {"status": ("DELETED", None)},
            entry_id=TOMBSTONE_ID,
        )
        try:
            await self._repo.delete(claimed)
        except Conflict:
            # Our lease ran out and another purger took over: it finishes the job.
            return False
        log.info("media purged", extra={"media_id": media.id})
        return True


def _may_act(principal: Principal, media: Media) -> bool:
    return principal.user_id == media.owner_id or principal.is_admin
