"""A presigned HTTP request for the client to send bytes with (a whole file, or one part)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import strawberry

from services.core.ports import PresignedRequest


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
