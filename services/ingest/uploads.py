"""createUpload: validate what the client declares, record it PENDING, hand out a signed PUT."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from ulid import ULID

from services.core.audit import AuditAction, Auditor
from services.core.auth import Principal
from services.core.errors import BadUserInput, Conflict, NotFound
from services.core.events import MediaEvent, MediaEventType
from services.core.media import Media, MediaStatus, Variant, Visibility, utcnow
from services.core.ports import (
    BlobStore,
    EventBus,
    IdempotencyClaim,
    IdempotencyStore,
    MediaRepository,
    PresignedRequest,
    QuotaExceeded,
)
from services.core.validation import (
    normalize_filename,
    normalize_sha256,
    normalize_tags,
    normalize_title,
)
from services.ingest.multipart import MultipartPlan, MultipartService, part_size_for
from services.ingest.pipeline import derived_key
from services.ingest.quotas import QuotaService


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    allowed_content_types: tuple[str, ...]
    max_upload_bytes: int
    upload_url_ttl_s: int
    pending_ttl_s: int
    upload_prefix: str = "uploads/"
    # Larger uploads go multipart (seed: > 100 MB); parts of this size, the last one smaller.
    multipart_threshold_bytes: int = 100 * 1024 * 1024
    part_size_bytes: int = 16 * 1024 * 1024
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
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        # What makes a retry "the same request": the bytes declared, not the cosmetic fields.
        declared = f"{self.content_type.strip().lower()}\0{self.size}\0{self.sha256.strip().lower()}"
        return hashlib.sha256(declared.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class UploadTicket:
    media: Media
    upload: PresignedRequest | None
    multipart: MultipartPlan | None = None
    replayed: bool = False  # an earlier request with the same idempotency key created `media`


_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def _created(media: Media) -> MediaEvent:
    return MediaEvent(MediaEventType.CREATED, media, media.created_at)


def object_key_for(prefix: str, media_id: str) -> str:
    # Server-chosen: nothing of the client's filename reaches the key.
    return f"{prefix}{media_id}"


def media_id_from_key(prefix: str, key: str) -> str | None:
    if not key.startswith(prefix):
        return None
    media_id = key[len(prefix) :]
    return media_id if media_id and "/" not in media_id else None


class UploadService:
    def __init__(
        self,
        repo: MediaRepository,
        blobs: BlobStore,
        bus: EventBus,
        policy: UploadPolicy,
        *,
        quotas: QuotaService | None = None,
        idempotency: IdempotencyStore | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self._auditor = auditor
        self._repo = repo
        self._blobs = blobs
        self._bus = bus
        self._policy = policy
        self._quotas = quotas
        self._idempotency = idempotency
        self.multipart = MultipartService(repo, blobs, url_ttl_s=policy.upload_url_ttl_s)

    async def create_upload(
        self, principal: Principal, request: UploadRequest, *, request_id: str | None = None
    ) -> UploadTicket:
        """Record a PENDING upload and presign its PUT (or start a multipart upload and plan it).
        With an idempotency key already used, return that request's media instead. Raises
        BadUserInput (invalid, over quota, key reused for other bytes) and Conflict (the key's
        first request is unfinished or its upload is gone); nothing is stored then."""
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
        key = request.idempotency_key
        if key is not None and not _IDEMPOTENCY_KEY.match(key):
            raise BadUserInput("idempotencyKey: 8 to 128 of A-Z a-z 0-9 . _ : -", field="idempotencyKey")
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
        # The key is taken first (one conditional write): of two concurrent twins exactly one
        # creates; the other, and every later retry, gets the first one's media.
        claim = IdempotencyClaim(media_id, request.fingerprint())
        store = self._idempotency if key is not None else None
        if store is not None and key is not None:
            holder = await store.claim(principal.user_id, key, claim, ttl_s=self._policy.pending_ttl_s)
            if holder is not None:
                return await self._replayed(principal, holder, request)
        try:
            ticket = await self._start(media)
        except BaseException:
            # Nothing was created: a retry with the same key must be free to try again. But a
            # record that was written stays the key's: whatever failed after the write, the
            # retry gets that media, never a second one.
            if store is not None and key is not None and not await self._exists(media.id):
                await store.release(principal.user_id, key, claim)
            raise
        if ticket.media.status is MediaStatus.PENDING:  # an instant upload announced COMPLETED
            await self._bus.publish(_created(ticket.media))
        if self._auditor is not None:
            created = {"status": (None, media.status.value), "visibility": (None, media.visibility.value)}
            await self._auditor.record(ticket.media, principal.user_id, AuditAction.CREATED, now, created)
        return ticket

    async def _exists(self, media_id: str) -> bool:
        try:
            return await self._repo.get(media_id) is not None
        except Exception:
            return False  # the store is unreachable: as before, the key is given back

    async def _start(self, media: Media) -> UploadTicket:
        same = await self._repo.find_completed_by_sha256(media.owner_id, media.sha256)
        if same is not None and same.size == media.size and same.content_type == media.content_type:
            try:
                return await self._instant(media, same)
            except NotFound:
                pass  # deleted meanwhile: an ordinary upload, then
        if media.size > self._policy.multipart_threshold_bytes:
            part_size = part_size_for(media.size, self._policy.part_size_bytes)
            upload_id = await self._blobs.create_multipart(media.object_key, content_type=media.content_type)
            media = dataclasses.replace(media, multipart_upload_id=upload_id, part_size=part_size)
            try:
                await self._create(media, events=(_created(media),))
            except BaseException:
                await self._blobs.abort_multipart(media.object_key, upload_id)
                raise
            return UploadTicket(media=media, upload=None, multipart=await self.multipart.plan(media))
        upload = await self._presign_put(media)
        await self._create(media, events=(_created(media),))
        return UploadTicket(media=media, upload=upload)

    async def _create(self, media: Media, *, events: Sequence[MediaEvent]) -> None:
        """Write the new record (and its events: the outbox), reserving its quota in the same
        atomic write."""
        if self._quotas is None:
            await self._repo.create(media, events=events)
            return
        try:
            await self._repo.create(media, events=events, quota=self._quotas.quota)
        except QuotaExceeded as exceeded:
            raise self._quotas.refusal(exceeded, media.size) from None

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
        event = MediaEvent(MediaEventType.COMPLETED, done, media.created_at)
        try:
            await self._create(done, events=(event,))
        except BadUserInput:
            # Over quota: the copies just made belong to no record.
            for key in (media.object_key, *(variant.key for variant in variants)):
                await self._blobs.delete(key)
            raise
        await self._bus.publish(event)
        return UploadTicket(media=done, upload=None)

    async def _presign_put(self, media: Media) -> PresignedRequest:
        return await self._blobs.presign_put(
            media.object_key,
            content_type=media.content_type,
            size=media.size,
            sha256_b64=base64.b64encode(bytes.fromhex(media.sha256)).decode(),
            expires_in=self._policy.upload_url_ttl_s,
        )

    async def _replayed(
        self, principal: Principal, holder: IdempotencyClaim, request: UploadRequest
    ) -> UploadTicket:
        if holder.fingerprint != request.fingerprint():
            raise BadUserInput(
                "idempotencyKey was already used for a different upload (other type, size or sha256)",
                field="idempotencyKey",
            )
        media = await self._repo.get(holder.media_id) if holder.media_id else None
        if media is None or media.owner_id != principal.user_id or media.is_expired(utcnow()):
            raise Conflict(
                "the first request with this idempotencyKey is still running, or its upload was "
                "aborted or has expired: retry shortly, or use a new key"
            )
        # The first request's write committed; if its event did not go out, it goes out now.
        await self._bus.deliver_pending(media.id)
        if media.status is not MediaStatus.PENDING:
            return UploadTicket(media=media, upload=None, replayed=True)
        if media.multipart_upload_id is not None:
            return UploadTicket(
                media=media, upload=None, multipart=await self.multipart.plan(media), replayed=True
            )
        return UploadTicket(media=media, upload=await self._presign_put(media), replayed=True)
