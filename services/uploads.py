"""createUpload: validate what the client declares, record it PENDING, hand out a signed PUT."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta

from ulid import ULID

from services.auth import Principal
from services.errors import BadUserInput, NotFound
from services.events import MediaEvent, MediaEventType
from services.media import Media, MediaStatus, Variant, Visibility, utcnow
from services.pipeline import derived_key
from services.ports import BlobStore, EventBus, MediaRepository, PresignedRequest
from services.validation import (
    normalize_filename,
    normalize_sha256,
    normalize_tags,
    normalize_title,
)


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    allowed_content_types: tuple[str, ...]
    max_upload_bytes: int
    upload_url_ttl_s: int
    pending_ttl_s: int
    upload_prefix: str = "uploads/"
    derived_prefix: str = "derived/"


@dataclass(frozen=True, slots=True)
class UploadRequest:
    filename: str
    content_type: str
    size: int
    sha256: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    visibility: Visibility = Visibility.PRIVATE


@dataclass(frozen=True, slots=True)
class UploadTicket:
    media: Media
    upload: PresignedRequest | None


def object_key_for(prefix: str, media_id: str) -> str:
    # Server-chosen: nothing of the client's filename reaches the key.
    return f"{prefix}{media_id}"


def media_id_from_key(prefix: str, key: str) -> str | None:
    if not key.startswith(prefix):
        return None
    media_id = key[len(prefix) :]
    return media_id if media_id and "/" not in media_id else None


class UploadService:
    def __init__(self, repo: MediaRepository, blobs: BlobStore, bus: EventBus, policy: UploadPolicy) -> None:
        self._repo = repo
        self._blobs = blobs
        self._bus = bus
        self._policy = policy

    async def create_upload(
        self, principal: Principal, request: UploadRequest, *, request_id: str | None = None
    ) -> UploadTicket:
        """Record a PENDING upload and presign its PUT. Raises BadUserInput; nothing is stored then."""
        content_type = request.content_type.strip().lower()
        if content_type not in self._policy.allowed_content_types:
            allowed = ", ".join(self._policy.allowed_content_types)
            raise BadUserInput(
                f"contentType {request.content_type[:80]!r} is not accepted; allowed: {allowed}",
                field="contentType",
            )
        if not 1 <= request.size <= self._policy.max_upload_bytes:
            raise BadUserInput(
                f"size must be between 1 and {self._policy.max_upload_bytes} bytes",
                field="size",
            )
        sha256 = normalize_sha256(request.sha256)
        now = utcnow()
        media_id = str(ULID())
        media = Media(
            id=media_id,
            owner_id=principal.user_id,
            status=MediaStatus.PENDING,
            filename=normalize_filename(request.filename),
            content_type=content_type,
            size=request.size,
            sha256=sha256,
            title=normalize_title(request.title),
            tags=normalize_tags(request.tags),
            visibility=request.visibility,
            object_key=object_key_for(self._policy.upload_prefix, media_id),
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=self._policy.pending_ttl_s),
            request_id=request_id,
        )
        same = await self._repo.find_completed_by_sha256(principal.user_id, sha256)
        if same is not None and same.size == media.size and same.content_type == content_type:
            try:
                return await self._instant(media, same)
            except NotFound:
                pass  # deleted meanwhile: an ordinary upload, then
        upload = await self._blobs.presign_put(
            media.object_key,
            content_type=content_type,
            size=request.size,
            sha256_b64=base64.b64encode(bytes.fromhex(sha256)).decode(),
            expires_in=self._policy.upload_url_ttl_s,
        )
        await self._repo.create(media)
        await self._bus.publish(MediaEvent(MediaEventType.CREATED, media, now))
        return UploadTicket(media=media, upload=upload)

    async def _instant(self, media: Media, same: Media) -> UploadTicket:
        """The owner already has these verified bytes: copy them (and their variants) inside S3
        and complete at once, with the new title, tags and visibility. No bytes are sent.

        The copy lands under the upload prefix, so S3 notifies the worker; it finds the record
        COMPLETED and does nothing (or, if it comes first, finds no record and ignores it)."""
        await self._blobs.copy(same.object_key, media.object_key)
        variants = []
        for variant in same.variants:
            key = derived_key(self._policy.derived_prefix, media.id, variant.name)
            await self._blobs.copy(variant.key, key)
            variants.append(Variant(variant.name, key, variant.width, variant.height, variant.content_type))
        done = media.transition(
            MediaStatus.COMPLETED,
            media.created_at,
            width=same.width,
            height=same.height,
            blurhash=same.blurhash,
            phash=same.phash,
            variants=tuple(variants),
            duplicate_of=same.id,
        )
        await self._repo.create(done)
        await self._bus.publish(MediaEvent(MediaEventType.COMPLETED, done, media.created_at))
        return UploadTicket(media=done, upload=None)
