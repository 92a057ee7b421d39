"""The worker's side of an upload: an S3 ObjectCreated notice → verify → COMPLETED or REJECTED.

S3 delivers at least once and moto even sends two notices for one multipart upload, so
every step here is idempotent. Timeline of a redelivery:

    t0  notice #1: PENDING v1 → COMPLETED v2 (conditional on v1), publish (dedupe key v2)
    t1  notice #2: record already COMPLETED → publish again with the same dedupe key → dropped

A worker killed between the write and the publish is mended by the same path: the second
delivery finds COMPLETED and publishes the event that was never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.audit import Auditor
from services.errors import Conflict
from services.events import MediaEvent, MediaEventType
from services.media import TERMINAL, Media, MediaStatus, utcnow
from services.ports import BlobStore, EventBus, MediaRepository
from services.uploads import media_id_from_key
from services.verification import DEFAULT_CHECKS, Check

log = logging.getLogger("mediagraph.worker")


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    key: str
    size: int | None = None
    event_time: datetime | None = None
    sequencer: str | None = None  # absent from moto's events; present on real S3


class Outcome(StrEnum):
    COMPLETED = "completed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"  # already processed: nothing changed
    IGNORED = "ignored"  # not ours, unknown, or gone


_EVENT_FOR = {
    MediaStatus.COMPLETED: MediaEventType.COMPLETED,
    MediaStatus.REJECTED: MediaEventType.REJECTED,
    MediaStatus.QUARANTINED: MediaEventType.QUARANTINED,
}


class ProcessingService:
    def __init__(
        self,
        repo: MediaRepository,
        blobs: BlobStore,
        bus: EventBus,
        *,
        upload_prefix: str,
        checks: Sequence[Callable[[Media], Check]] = DEFAULT_CHECKS,
        auditor: Auditor | None = None,
    ) -> None:
        self._auditor = auditor
        self._repo = repo
        self._blobs = blobs
        self._bus = bus
        self._prefix = upload_prefix
        self._checks = checks

    async def handle(self, notice: ObjectCreated) -> Outcome:
        """Process one notice. Raises on transient failures so the message is retried."""
        media_id = media_id_from_key(self._prefix, notice.key)
        if media_id is None:
            return Outcome.IGNORED
        media = await self._repo.get(media_id)
        if media is None or media.object_key != notice.key:
            return Outcome.IGNORED
        if media.status in TERMINAL:
            await self._announce(media)
            return Outcome.DUPLICATE
        if media.status is MediaStatus.DELETED:
            return Outcome.IGNORED

        reason = await self._verify(media)
        now = utcnow()
        if reason is None:
            done = media.transition(MediaStatus.COMPLETED, now)
        else:
            done = media.transition(MediaStatus.REJECTED, now, reject_reason=reason)
        try:
            await self._repo.save(done, expected_version=media.version, previous=media)
        except Conflict:
            # Another worker (or a redelivery) got there first; its outcome stands.
            current = await self._repo.get(media_id)
            if current is not None and current.status in TERMINAL:
                await self._announce(current)
            return Outcome.DUPLICATE
        if self._auditor is not None:
            await self._auditor.outcome(done)
        await self._announce(done)
        log.info(
            "media processed",
            extra={"media_id": media_id, "status": done.status.value, "request_id": media.request_id},
        )
        return Outcome.COMPLETED if reason is None else Outcome.REJECTED

    async def sweep_expired(self, *, limit: int = 100) -> int:
        """Remove PENDING uploads whose bytes never came (moto never runs DynamoDB TTL, and real
        TTL deletes up to days late). Oldest first; stops at the first one still in time."""
        now = utcnow()
        removed = 0
        for media in await self._repo.oldest_with_status(MediaStatus.PENDING, limit=limit):
            if not media.is_expired(now):
                break
            try:
                await self._repo.delete(media)
            except Conflict:
                continue  # its upload arrived meanwhile: the worker owns it now
            if media.multipart_upload_id is not None:
                # Parts are billed until aborted; the bucket's lifecycle rule is the backstop.
                await self._blobs.abort_multipart(media.object_key, media.multipart_upload_id)
            await self._blobs.delete(media.object_key)
            removed += 1
        return removed

    async def _verify(self, media: Media) -> str | None:
        blob = await self._blobs.open(media.object_key)
        if blob is None:
            return "object missing"
        try:
            info = blob.info
            # Cheap refusals first: no need to read gigabytes of the wrong size.
            if info.size != media.size:
                return f"size mismatch: declared {media.size} bytes, received {info.size}"
            if info.content_type is not None and info.content_type.lower() != media.content_type:
                return f"type mismatch: declared {media.content_type}, sent as {info.content_type}"
            checks = [make(media) for make in self._checks]
            async for chunk in blob.chunks:
                for check in checks:
                    check.feed(chunk)
        finally:
            await blob.close()
        for check in checks:
            if (reason := check.verdict()) is not None:
                return reason
        return None

    async def _announce(self, media: Media) -> None:
        event_type = _EVENT_FOR.get(media.status)
        if event_type is not None:
            occurred = media.completed_at or media.updated_at
            await self._bus.publish(MediaEvent(event_type, media, occurred))
