"""deleteAccount and exportMyData: the caller's whole library at once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from ulid import ULID

from services.core.auth import Principal, require
from services.core.errors import Conflict, NotFound
from services.core.media import Media, MediaStatus, utcnow
from services.core.ports import BlobStore, EngagementStore, ListFilter, MediaRepository
from services.library.retention import RetentionService

EXPORT_PREFIX = "exports/"
# Record fields that are ours, not the user's: left out of the export.
_INTERNAL = ("object_key", "request_id", "multipart_upload_id", "part_size", "purge_lease_until", "version")
_PAGE = 100


@dataclass(frozen=True, slots=True)
class AccountDeletion:
    media_deleted: int
    likes_removed: int


@dataclass(frozen=True, slots=True)
class DataExport:
    url: str
    expires_at: datetime
    media_count: int


class AccountService:
    def __init__(
        self,
        repo: MediaRepository,
        blobs: BlobStore,
        engagement: EngagementStore,
        retention: RetentionService,
        *,
        link_ttl_s: int = 24 * 3600,
    ) -> None:
        self._repo = repo
        self._blobs = blobs
        self._engagement = engagement
        self._retention = retention
        self._link_ttl_s = link_ttl_s

    async def delete_account(self, viewer: Principal | None) -> AccountDeletion:
        """Every media of the caller to the trash (purged after the window, as any delete), and
        the likes the caller gave removed. Friendships: not stored yet; their removal belongs here.
        Raises Unauthenticated."""
        principal = require(viewer)
        deleted = 0
        for media in await self._library(principal.user_id):
            if media.status is MediaStatus.DELETED:
                continue
            try:
                await self._retention.delete(principal, media.id)
            except (NotFound, Conflict):
                continue  # deleted or changed meanwhile: a second call finishes the job
            deleted += 1
        likes = await self._engagement.forget_user(principal.user_id)
        return AccountDeletion(media_deleted=deleted, likes_removed=likes)

    async def export(self, viewer: Principal | None) -> DataExport:
        """A JSON archive of the caller's media metadata with links to their originals, stored in
        the bucket; returns a download URL. Raises Unauthenticated."""
        principal = require(viewer)
        now = utcnow()
        library = await self._library(principal.user_id)
        entries = [await self._entry(media) for media in library]
        document = {"user": principal.user_id, "exported_at": now.isoformat(), "media": entries}
        key = f"{EXPORT_PREFIX}{principal.user_id}/{ULID()}.json"
        await self._blobs.write(key, json.dumps(document, indent=1).encode(), content_type="application/json")
        url = await self._blobs.presign_get(key, expires_in=self._link_ttl_s)
        return DataExport(
            url=url, expires_at=now + timedelta(seconds=self._link_ttl_s), media_count=len(entries)
        )

    async def _entry(self, media: Media) -> dict[str, object]:
        record = {k: v for k, v in media.to_record().items() if k not in _INTERNAL}
        has_bytes = media.status in (MediaStatus.COMPLETED, MediaStatus.DELETED)
        link = (
            await self._blobs.presign_get(media.object_key, expires_in=self._link_ttl_s)
            if has_bytes
            else None
        )
        return {**record, "original_url": link}

    async def _library(self, owner_id: str) -> list[Media]:
        found: list[Media] = []
        after: str | None = None
        while True:
            page = await self._repo.list_by_owner(owner_id, limit=_PAGE, after=after, filter=ListFilter())
            found += page.items
            if not page.has_more or page.last_position is None:
                return found
            after = page.last_position
