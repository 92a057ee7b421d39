"""Friends, blocks and the view log."""

from __future__ import annotations

import strawberry

from schema.types.context import Info
from schema.types.media import User, decode_media_id
from schema.types.social import Friendship, MediaViewConnection, UserConnection, user_connection
from services.community.social import SocialService
from services.library.views import ViewService


def _social(info: Info) -> SocialService:
    return info.context.services.social


def _views(info: Info) -> ViewService:
    return info.context.services.views


async def request_friend(info: Info, user_id: strawberry.ID) -> Friendship:
    state = await _social(info).request(info.context.principal, str(user_id))
    return Friendship(user=User(id=user_id), status=state)


async def accept_friend(info: Info, user_id: strawberry.ID) -> Friendship:
    state = await _social(info).accept(info.context.principal, str(user_id))
    return Friendship(user=User(id=user_id), status=state)


async def remove_friend(info: Info, user_id: strawberry.ID) -> bool:
    return await _social(info).remove(info.context.principal, str(user_id))


async def block_user(info: Info, user_id: strawberry.ID) -> bool:
    return await _social(info).block(info.context.principal, str(user_id))


async def friends(info: Info, first: int | None = None, after: str | None = None) -> UserConnection:
    page = await _social(info).friends(info.context.principal, first=first, after=after)
    return user_connection(page, has_previous_page=after is not None)


async def friend_requests(info: Info, first: int | None = None, after: str | None = None) -> UserConnection:
    page = await _social(info).requests(info.context.principal, first=first, after=after)
    return user_connection(page, has_previous_page=after is not None)


async def media_views(
    info: Info, id: strawberry.ID, first: int | None = None, after: str | None = None
) -> MediaViewConnection:
    page = await _views(info).log(info.context.principal, decode_media_id(id), first=first, after=after)
    return MediaViewConnection.from_page(page, has_previous_page=after is not None)
