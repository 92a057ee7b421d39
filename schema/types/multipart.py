"""Multipart uploads: the plan createUpload returns, part URLs, progress, and completion input."""

from __future__ import annotations

import strawberry

from schema.types.presigned import PresignedUpload
from schema.types.scalars import Long
from services.core.ports import UploadedPart
from services.ingest.multipart import (
    CompletedPart,
    MultipartPlan,
    PartRequest,
    PresignedPart,
    Progress,
    b64_to_hex,
)


@strawberry.input(description="A part to presign; with sha256 the part's checksum is signed into the URL.")
class PartInput:
    part_number: int = strawberry.field(description="1-based part number.")
    sha256: str | None = strawberry.field(default=None, description="SHA-256 of the part, 64 hex characters.")

    def to_request(self) -> PartRequest:
        return PartRequest(part_number=self.part_number, sha256=self.sha256)


@strawberry.input(description="A part as S3 acknowledged it: its number, the ETag of its PUT, its SHA-256.")
class CompletedPartInput:
    part_number: int
    etag: str = strawberry.field(description="The ETag header S3 answered the part's PUT with.")
    sha256: str | None = strawberry.field(default=None, description="SHA-256 of the part, 64 hex characters.")

    def to_part(self) -> CompletedPart:
        return CompletedPart(part_number=self.part_number, etag=self.etag, sha256=self.sha256)


@strawberry.type(description="The signed PUT for one part. Keep the ETag header of its response.")
class UploadPartUrl:
    part_number: int
    upload: PresignedUpload

    @classmethod
    def from_model(cls, part: PresignedPart) -> UploadPartUrl:
        return cls(part_number=part.part_number, upload=PresignedUpload.from_request(part.request))


@strawberry.type(description="How to send a large file: parts of partSize bytes (the last one smaller).")
class MultipartUpload:
    part_size: Long
    part_count: int
    parts: list[UploadPartUrl] = strawberry.field(
        description="URLs for the first parts (up to 100); uploadPartUrls mints the rest and fresh ones."
    )

    @classmethod
    def from_model(cls, plan: MultipartPlan) -> MultipartUpload:
        return cls(
            part_size=Long(plan.part_size),
            part_count=plan.part_count,
            parts=[UploadPartUrl.from_model(part) for part in plan.parts],
        )


@strawberry.type(description="A part S3 already holds.")
class UploadedPartInfo:
    part_number: int
    size: Long
    etag: str
    sha256: str | None = strawberry.field(description="Hex SHA-256 when S3 reports the part's checksum.")

    @classmethod
    def from_model(cls, part: UploadedPart) -> UploadedPartInfo:
        sha = b64_to_hex(part.sha256_b64) if part.sha256_b64 else None
        return cls(part_number=part.part_number, size=Long(part.size), etag=part.etag, sha256=sha)


@strawberry.type(description="What S3 has of a multipart upload: resume by sending only missingParts.")
class UploadProgress:
    part_size: Long
    part_count: int
    uploaded_parts: list[UploadedPartInfo]
    missing_parts: list[int]

    @classmethod
    def from_model(cls, progress: Progress) -> UploadProgress:
        return cls(
            part_size=Long(progress.part_size),
            part_count=progress.part_count,
            uploaded_parts=[UploadedPartInfo.from_model(part) for part in progress.uploaded],
            missing_parts=progress.missing,
        )
