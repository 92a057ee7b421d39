"""Reconcile: find (and, asked to, repair) what the bucket and the table disagree on.

    orphan objects            bytes under the upload prefix (or derived/) whose media has no record
    records without object    COMPLETED media (or deleted COMPLETED media) whose original is gone
    expired PENDING           uploads whose bytes never came, past their expiry (the sweeper's job)

Repairs: orphan objects are removed with every version; a record without its object is purged
(it can never be shown again) with a tombstone by `reconcile`; expired PENDING are swept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.core.audit import TOMBSTONE_ID, AuditAction, Auditor
from services.core.media import Media, MediaStatus, utcnow
from services.core.ports import BlobStore, EngagementStore, MediaRepository
from services.ingest.processing import ProcessingService
from services.ingest.uploads import media_id_from_key

RECONCILE_ACTOR = "reconcile"
DERIVED_PREFIX = "derived/"
_BATCH = 100


@dataclass(slots=True)
class ReconcileReport:
    orphan_objects: list[str] = field(default_factory=list)
    records_without_object: list[str] = field(default_factory=list)
    expired_pending: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def clean(self) -> bool:
        return not (self.orphan_objects or self.records_without_object or self.expired_pending)

    def to_record(self) -> dict[str, object]:
        return {
            "orphan_objects": self.orphan_objects,
            "records_without_object": self.records_without_object,
            "expired_pending": self.expired_pending,
            "repaired": self.repaired,
        }


class ReconcileService:
    def __init__(
        self,
        repo: MediaRepository,
        blobs: BlobStore,
        engagement: EngagementStore,
        auditor: Auditor,
        processing: ProcessingService,
        *,
        upload_prefix: str,
    ) -> None:
        self._repo = repo
        self._blobs = blobs
        self._engagement = engagement
        self._auditor = auditor
        self._processing = processing
        self._prefix = upload_prefix

    async def run(self, *, repair: bool = False) -> ReconcileReport:
        """Report the disagreements; with `repair`, mend them too."""
        report = ReconcileReport(repaired=repair)
        await self._orphan_objects(report, repair)
        await self._records(report, repair)
        if repair and report.expired_pending:
            await self._processing.sweep_expired(limit=len(report.expired_pending))
        return report

    async def _orphan_objects(self, report: ReconcileReport, repair: bool) -> None:
        batch: dict[str, str] = {}
        async for key in self._blobs.keys(self._prefix):
            media_id = media_id_from_key(self._prefix, key)
            batch[key] = media_id or ""
            if len(batch) >= _BATCH:
                await self._check_objects(batch, report, repair)
                batch = {}
        async for key in self._blobs.keys(DERIVED_PREFIX):
            batch[key] = key.removeprefix(DERIVED_PREFIX).split("/", 1)[0]
            if len(batch) >= _BATCH:
                await self._check_objects(batch, report, repair)
                batch = {}
        if batch:
            await self._check_objects(batch, report, repair)

    async def _check_objects(self, batch: dict[str, str], report: ReconcileReport, repair: bool) -> None:
        found = await self._repo.get_many([media_id for media_id in batch.values() if media_id])
        for key, media_id in batch.items():
            if media_id in found:
                continue
            report.orphan_objects.append(key)
            if repair:
                await self._blobs.delete_all_versions(key)

    async def _records(self, report: ReconcileReport, repair: bool) -> None:
        now = utcnow()
        after: str | None = None
        while True:
            page = await self._repo.scan(limit=_BATCH, after=after)
            for media in page.items:
                if media.is_expired(now):
                    report.expired_pending.append(media.id)
                elif _should_have_bytes(media) and await self._blobs.head(media.object_key) is None:
                    report.records_without_object.append(media.id)
                    if repair:
                        await self._drop(media)
            if not page.has_more or page.last_position is None:
                return
            after = page.last_position

    async def _drop(self, media: Media) -> None:
        await self._engagement.forget(media.id)
        await self._auditor.record(
            media,
            RECONCILE_ACTOR,
            AuditAction.PURGED,
            utcnow(),
            {"reason": (None, "object missing")},
            entry_id=TOMBSTONE_ID,
        )
        await self._repo.delete(media)


def _should_have_bytes(media: Media) -> bool:
    status = media.status_before_delete if media.status is MediaStatus.DELETED else media.status
    return status is MediaStatus.COMPLETED
