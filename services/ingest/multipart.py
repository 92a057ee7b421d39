"""Multipart uploads of large files: the plan, fresh part URLs, progress (resume), completion, abort.

A large upload is one S3 multipart upload (created with SHA-256 part checksums) behind a PENDING
record. The client PUTs parts in any order, asks `uploadProgress` after a crash to learn which
parts S3 already has, and calls `completeUpload` with every part's ETag. Completion checks the
parts against what S3 holds (numbers, ETags, sizes, checksums) and against the declared size
before assembling; the worker then verifies the whole object's SHA-256 as for any upload.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from services.core.auth import Principal
from services.core.errors import BadUserInput, Conflict, NotFound
from services.core.media import Media, MediaStatus
from services.core.ports import BlobStore, MediaRepository, PresignedRequest, UploadedPart
from services.core.validation import normalize_sha256

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000  # S3's maximum part count
MAX_URLS_PER_REQUEST = 100


@dataclass(frozen=True, slots=True)
class PartRequest:
    part_number: int
    sha256: str | None = None  # hex; signed into the URL when given


@dataclass(frozen=True, slots=True)
class CompletedPart:
    part_number: int
    etag: str
    sha256: str | None = None  # hex


@dataclass(frozen=True, slots=True)
class PresignedPart:
    part_number: int
    request: PresignedRequest


@dataclass(frozen=True, slots=True)
class MultipartPlan:
    part_size: int
    part_count: int
    parts: list[PresignedPart]  # the first MAX_URLS_PER_REQUEST parts; uploadPartUrls for more


@dataclass(frozen=True, slots=True)
class Progress:
    part_size: int
    part_count: int
    uploaded: list[UploadedPart]

    @property
    def missing(self) -> list[int]:
        have = {part.part_number for part in self.uploaded}
        return [number for number in range(1, self.part_count + 1) if number not in have]


def part_size_for(size: int, preferred: int) -> int:
    """`preferred`, grown in whole MiB when the file would need more than S3's 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    if needed <= preferred:
        return preferred
    mib = 1024 * 1024
    return -(-needed // mib) * mib


def part_count(size: int, part_size: int) -> int:
    return max(1, -(-size // part_size))


def expected_part_size(media: Media, part_number: int) -> int:
    assert media.part_size is not None
    count = part_count(media.size, media.part_size)
    return media.part_size if part_number < count else media.size - media.part_size * (count - 1)


def hex_to_b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(normalize_sha256(sha256_hex))).decode()


def b64_to_hex(sha256_b64: str) -> str | None:
    try:
        return base64.b64decode(sha256_b64, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


class MultipartService:
    def __init__(self, repo: MediaRepository, blobs: BlobStore, *, url_ttl_s: int) -> None:
        self._repo = repo
        self._blobs = blobs
        self._url_ttl_s = url_ttl_s

    async def plan(self, media: Media) -> MultipartPlan:
        """Presigned URLs for the first parts of an open multipart upload (no checksums yet)."""
        count = self._count(media)
        first = [PartRequest(number) for number in range(1, min(count, MAX_URLS_PER_REQUEST) + 1)]
        assert media.part_size is not None
        return MultipartPlan(media.part_size, count, await self._presign(media, first))

    async def part_urls(
        self, principal: Principal, media_id: str, parts: Sequence[PartRequest]
    ) -> list[PresignedPart]:
        """Fresh URLs for `parts`. Raises NotFound, BadUserInput (bad numbers, hashes or state)."""
        media = await self._open_upload(principal, media_id)
        count = self._count(media)
        if not 1 <= len(parts) <= MAX_URLS_PER_REQUEST:
            raise BadUserInput(f"ask for 1 to {MAX_URLS_PER_REQUEST} parts at a time", field="parts")
        for part in parts:
            if not 1 <= part.part_number <= count:
                raise BadUserInput(f"partNumber must be between 1 and {count}", field="parts")
        return await self._presign(media, list(parts))

    async def progress(self, principal: Principal, media_id: str) -> Progress:
        """The parts S3 already holds. Raises NotFound, BadUserInput (not a multipart upload)."""
        media = await self._open_upload(principal, media_id)
        uploaded = await self._uploaded(media)
        assert media.part_size is not None
        return Progress(media.part_size, self._count(media), uploaded)

    async def complete(self, principal: Principal, media_id: str, parts: Sequence[CompletedPart]) -> Media:
        """Check the parts against S3 and the declaration, then assemble the object. The record
        stays PENDING until the worker has verified the whole file.
        Raises NotFound, BadUserInput (missing, extra or mismatched parts; nothing is assembled)."""
        media = await self._open_upload(principal, media_id)
        count = self._count(media)
        numbers = sorted(part.part_number for part in parts)
        if numbers != list(range(1, count + 1)):
            raise BadUserInput(f"completeUpload needs each of parts 1..{count} exactly once", field="parts")
        held = {part.part_number: part for part in await self._uploaded(media)}
        missing = [number for number in numbers if number not in held]
        if missing:
            raise BadUserInput(
                f"S3 does not have parts {missing[:20]} yet", field="parts", missingParts=missing
            )
        assembled: list[UploadedPart] = []
        for given in sorted(parts, key=lambda part: part.part_number):
            stored = held[given.part_number]
            number = given.part_number
            if _plain_etag(given.etag) != _plain_etag(stored.etag):
                raise BadUserInput(f"part {number}: ETag does not match the part S3 holds", field="parts")
            if stored.size != expected_part_size(media, number):
                raise BadUserInput(
                    f"part {number}: {stored.size} bytes where {expected_part_size(media, number)} "
                    "were expected; upload it again",
                    field="parts",
                )
            stored_hex = b64_to_hex(stored.sha256_b64) if stored.sha256_b64 else None
            given_hex = normalize_sha256(given.sha256) if given.sha256 else None
            if given_hex and stored_hex and given_hex != stored_hex:
                raise BadUserInput(f"part {number}: checksum does not match the part S3 holds", field="parts")
            checksum = stored.sha256_b64 or (hex_to_b64(given_hex) if given_hex else None)
            assembled.append(UploadedPart(number, stored.size, stored.etag, checksum))
        if sum(part.size for part in assembled) != media.size:
            raise BadUserInput(f"the parts do not add up to the declared {media.size} bytes", field="parts")
        assert media.multipart_upload_id is not None
        await self._blobs.complete_multipart(media.object_key, media.multipart_upload_id, assembled)
        return media

    async def abort(self, principal: Principal, media_id: str) -> None:
        """Drop a PENDING upload: its multipart upload (or object) and its record.
        Raises NotFound, Conflict (no longer PENDING)."""
        media = await self._repo.get(media_id)
        if media is None or media.owner_id != principal.user_id:
            raise NotFound("no such upload")
        if media.status is not MediaStatus.PENDING:
            raise Conflict(f"the upload is {media.status.value}, not PENDING: nothing to abort")
        if media.multipart_upload_id is not None:
            await self._blobs.abort_multipart(media.object_key, media.multipart_upload_id)
        await self._repo.delete(media)
        await self._blobs.delete(media.object_key)

    async def _open_upload(self, principal: Principal, media_id: str) -> Media:
        media = await self._repo.get(media_id)
        if media is None or media.owner_id != principal.user_id:
            raise NotFound("no such upload")
        if media.multipart_upload_id is None or media.part_size is None:
            raise BadUserInput("this upload is a single PUT, not a multipart upload", field="mediaId")
        if media.status is not MediaStatus.PENDING:
            raise BadUserInput(f"the upload is already {media.status.value}", field="mediaId")
        return media

    async def _uploaded(self, media: Media) -> list[UploadedPart]:
        assert media.multipart_upload_id is not None
        parts = await self._blobs.list_parts(media.object_key, media.multipart_upload_id)
        if parts is None:
            raise BadUserInput(
                "the multipart upload is gone (completed, aborted or expired)", field="mediaId"
            )
        return parts

    def _count(self, media: Media) -> int:
        assert media.part_size is not None
        return part_count(media.size, media.part_size)

    async def _presign(self, media: Media, parts: list[PartRequest]) -> list[PresignedPart]:
        assert media.multipart_upload_id is not None
        return [
            PresignedPart(
                part.part_number,
                await self._blobs.presign_part(
                    media.object_key,
                    media.multipart_upload_id,
                    part.part_number,
                    sha256_b64=hex_to_b64(part.sha256) if part.sha256 else None,
                    expires_in=self._url_ttl_s,
                ),
            )
            for part in parts
        ]


def _plain_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()
