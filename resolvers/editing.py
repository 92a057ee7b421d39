"""updateMedia, likeMedia, unlikeMedia."""

from __future__ import annotations

import strawberry

from schema.types.context import Info
from schema.types.editing import UpdateMediaInput
from schema.types.media import Media, decode_media_id


async def update_media(info: Info, id: strawberry.ID, input: UpdateMediaInput) -> Media:
    context = info.context
    updated = await context.services.editing.update(
        context.principal, decode_media_id(id), input.to_changes()
    )
    return Media.from_model(updated)


async def like_media(info: Info, id: strawberry.ID) -> Media:
    context = info.context
    return Media.from_model(await context.services.engagement.like(context.principal, decode_media_id(id)))


async def unlike_media(info: Info, id: strawberry.ID) -> Media:
    context = info.context
    return Media.from_model(await context.services.engagement.unlike(context.principal, decode_media_id(id)))
