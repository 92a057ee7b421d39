"""Multipart uploads: uploadPartUrls, uploadProgress, completeUpload, abortUpload."""

from __future__ import annotations

import strawberry

from schema.types.context import Info
from schema.types.media import Media, decode_media_id
from schema.types.multipart import CompletedPartInput, PartInput, UploadPartUrl, UploadProgress
from services.core.auth import require


async def upload_part_urls(
    info: Info, media_id: strawberry.ID, parts: list[PartInput]
) -> list[UploadPartUrl]:
    context = info.context
    minted = await context.services.uploads.multipart.part_urls(
        require(context.principal), decode_media_id(media_id), [part.to_request() for part in parts]
    )
    return [UploadPartUrl.from_model(part) for part in minted]


async def upload_progress(info: Info, media_id: strawberry.ID) -> UploadProgress:
    context = info.context
    progress = await context.services.uploads.multipart.progress(
        require(context.principal), decode_media_id(media_id)
    )
    return UploadProgress.from_model(progress)


async def complete_upload(info: Info, media_id: strawberry.ID, parts: list[CompletedPartInput]) -> Media:
    context = info.context
    media = await context.services.uploads.multipart.complete(
        require(context.principal), decode_media_id(media_id), [part.to_part() for part in parts]
    )
    return Media.from_model(media)


async def abort_upload(info: Info, media_id: strawberry.ID) -> bool:
    context = info.context
    await context.services.uploads.multipart.abort(require(context.principal), decode_media_id(media_id))
    return True
