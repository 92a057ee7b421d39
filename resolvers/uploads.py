"""createUpload."""

from __future__ import annotations

from schema.types.context import Info
from schema.types.upload import CreateUploadInput, CreateUploadPayload
from services.core.auth import require


async def create_upload(info: Info, input: CreateUploadInput) -> CreateUploadPayload:
    context = info.context
    ticket = await context.services.uploads.create_upload(
        require(context.principal), input.to_request(), request_id=context.request_id
    )
    return CreateUploadPayload.from_ticket(ticket)
