"""Reading media: media(id) and myMedia."""

from __future__ import annotations

import strawberry

from schema.types.connection import MediaConnection
from schema.types.context import Info
from schema.types.filters import MediaFilter
from schema.types.media import Media, decode_media_id
from services.errors import NotFound


async def media(info: Info, id: strawberry.ID) -> Media | None:
    context = info.context
    try:
        found = await context.services.gallery.get(context.principal, decode_media_id(id))
    except NotFound:
        return None  # not visible looks exactly like not existing
    return Media.from_model(found)


async def my_media(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: MediaFilter | None = None,
) -> MediaConnection:
    context = info.context
    status = filter.status if filter else None
    page = await context.services.gallery.list_mine(
        context.principal, first=first, after=after, status=status
    )
    return MediaConnection.from_page(page, has_previous_page=after is not None)
