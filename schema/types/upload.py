"""createUpload's input and payload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import strawberry

from schema.types.enums import Visibility
from schema.types.media import Media
from schema.types.scalars import Long
from services.ports import PresignedRequest
from services.uploads import UploadRequest, UploadTicket


@strawberry.input(description="What the client is about to upload. Every value is verified later.")
class CreateUploadInput:
    filename: str
    content_type: str
    size: Long = strawberry.field(description="Exact size in bytes.")
    sha256: str = strawberry.field(description="SHA-256 of the bytes, 64 hex characters.")
    title: str | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    visibility: Visibility = Visibility.PRIVATE

    def to_request(self) -> UploadRequest:
        return UploadRequest(
            filename=self.filename,
            content_type=self.content_type,
            size=self.size,
            sha256=self.sha256,
            title=self.title,
            tags=tuple(self.tags),
            visibility=self.visibility,
        )


@strawberry.type
class HttpHeader:
    name: str
    value: str


@strawberry.type(
    description="Send the bytes with exactly this request (Content-Length is set by the client)."
)
class PresignedUpload:
    url: str
    method: str
    headers: list[HttpHeader]
    expires_at: datetime

    @classmethod
    def from_request(cls, request: PresignedRequest) -> PresignedUpload:
        return cls(
            url=request.url,
            method=request.method,
            headers=[HttpHeader(name=name, value=value) for name, value in request.headers.items()],
            expires_at=datetime.now(UTC) + timedelta(seconds=request.expires_in),
        )


@strawberry.type
class CreateUploadPayload:
    media: Media
    upload: PresignedUpload | None = strawberry.field(description="Null when no bytes need sending.")

    @classmethod
    def from_ticket(cls, ticket: UploadTicket) -> CreateUploadPayload:
        upload = PresignedUpload.from_request(ticket.upload) if ticket.upload else None
        return cls(media=Media.from_model(ticket.media), upload=upload)
