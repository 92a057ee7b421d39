"""Uploads made through a Runtime (no HTTP): createUpload, then the bytes PUT into S3 as the
client would, which makes S3 notify the worker."""

from __future__ import annotations

import hashlib

from infra.roots.runtime import Runtime
from services.core.auth import Principal
from services.ingest.uploads import UploadRequest


async def upload_directly(
    runtime: Runtime, data: bytes, *, user: str = "alice", key: str | None = None
) -> str:
    """The new media's id."""
    ticket = await runtime.uploads.create_upload(
        Principal(user),
        UploadRequest(
            filename="a.jpg",
            content_type="image/jpeg",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            idempotency_key=key,
        ),
    )
    await runtime.clients.s3.put_object(
        Bucket=runtime.settings.bucket, Key=ticket.media.object_key, Body=data, ContentType="image/jpeg"
    )
    return ticket.media.id
