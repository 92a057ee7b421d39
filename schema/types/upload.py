"""createUpload's input and payload."""

from __future__ import annotations

import strawberry

from schema.types.enums import Visibility
from schema.types.media import Media
from schema.types.multipart import MultipartUpload
from schema.types.presigned import HttpHeader, PresignedUpload
from schema.types.scalars import Long
from services.ingest.uploads import UploadRequest, UploadTicket

__all__ = ["CreateUploadInput", "CreateUploadPayload", "HttpHeader", "PresignedUpload"]


@strawberry.input(description="What the client is about to upload. Every value is verified later.")
class CreateUploadInput:
    filename: str
    content_type: str
    size: Long = strawberry.field(description="Exact size in bytes.")
    sha256: str = strawberry.field(description="SHA-256 of the bytes, 64 hex characters.")
    title: str | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    visibility: Visibility = Visibility.PRIVATE
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Any unique string (8-128 of A-Z a-z 0-9 . _ : -), reused when retrying: a retry "
        "with the same key returns the same media (and a freshly signed upload) instead of a new one.",
    )

    def to_request(self) -> UploadRequest:
        return UploadRequest(
            filename=self.filename,
            content_type=self.content_type,
            size=self.size,
            sha256=self.sha256,
            title=self.title,
            tags=tuple(self.tags),
            visibility=self.visibility,
            idempotency_key=self.idempotency_key,
        )


@strawberry.type
class CreateUploadPayload:
    media: Media
    upload: PresignedUpload | None = strawberry.field(
        description="The single PUT; null for a multipart upload or when no bytes need sending."
    )
    multipart: MultipartUpload | None = strawberry.field(
        description="For files above the multipart threshold: the parts to PUT, then completeUpload."
    )
    replayed: bool = strawberry.field(
        default=False, description="True when an earlier request with this idempotencyKey created the media."
    )

    @classmethod
    def from_ticket(cls, ticket: UploadTicket) -> CreateUploadPayload:
        upload = PresignedUpload.from_request(ticket.upload) if ticket.upload else None
        multipart = MultipartUpload.from_model(ticket.multipart) if ticket.multipart else None
        return cls(
            media=Media.from_model(ticket.media), upload=upload, multipart=multipart, replayed=ticket.replayed
        )
