"""Reading media: media(id), myMedia, userMedia, mediaByTag, feed."""

from __future__ import annotations

import strawberry

from schema.types.connection import MediaConnection
from schema.types.context import Info
from schema.types.enums import Ranking
from schema.types.filters import MediaFilter
from schema.types.media import Media, decode_media_id
from schema.types.prefetch import prefetch
from services.core.errors import NotFound
from services.library.gallery import MediaPage


async def media(info: Info, id: strawberry.ID) -> Media | None:
    context = info.context
    try:
        found = await context.services.gallery.get(context.principal, decode_media_id(id))
    except NotFound:
        return None  # not visible looks exactly like not existing
    context.services.views.viewed_later(context.principal, found)
    return Media.from_model(found, await prefetch(info, [found]))


async def my_media(
    info: Info, first: int | None = None, after: str | None = None, filter: MediaFilter | None = None
) -> MediaConnection:
    context = info.context
    page = await context.services.gallery.list_mine(
        context.principal, first=first, after=after, filter=filter.to_filter() if filter else None
    )
    return await _connection(info, page, after)


async def user_media(
    info: Info, user_id: strawberry.ID, first: int | None = None, after: str | None = None
) -> MediaConnection:
    context = info.context
    page = await context.services.gallery.list_user(context.principal, str(user_id), first=first, after=after)
    return await _connection(info, page, after)


async def media_by_tag(
    info: Info, tag: str, first: int | None = None, after: str | None = None
) -> MediaConnection:
    context = info.context
    page = await context.services.gallery.by_tag(context.principal, tag, first=first, after=after)
    return await _connection(info, page, after)


async def feed(
    info: Info, first: int | None = None, after: str | None = None, ranking: Ranking = Ranking.RECENT
) -> MediaConnection:
    context = info.context
    page = await context.services.feed.feed(context.principal, ranking=ranking, first=first, after=after)
    return await _connection(info, page, after)


async def _connection(info: Info, page: MediaPage, after: str | None) -> MediaConnection:
    """The page, with what its selected fields need read up front (schema/types/prefetch.py)."""
    return MediaConnection.from_page(
        page, has_previous_page=after is not None, prefetched=await prefetch(info, page.items)
    )
