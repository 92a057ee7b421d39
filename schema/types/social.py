"""Friends, friend requests and the view log."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from schema.types.connection import page_info
from schema.types.enums import FriendshipState
from schema.types.media import User
from services.community.social import UserPage
from services.library.views import ViewPage


@strawberry.type(description="You and another user.")
class Friendship:
    user: User
    status: FriendshipState


@strawberry.type
class UserEdge:
    cursor: str
    node: User


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: relay.PageInfo

    @classmethod
    def from_page(cls, page: UserPage, *, has_previous_page: bool) -> UserConnection:
        edges = [
            UserEdge(cursor=cursor, node=User(id=strawberry.ID(user_id)))
            for user_id, cursor in zip(page.user_ids, page.cursors, strict=True)
        ]
        return cls(
            edges=edges,
            page_info=page_info(
                [edge.cursor for edge in edges],
                has_next_page=page.has_next_page,
                has_previous_page=has_previous_page,
                end_cursor=page.end_cursor,
            ),
        )


@strawberry.type(description="One view of your media: who, and when.")
class MediaView:
    viewer: User
    viewed_at: datetime


@strawberry.type
class MediaViewEdge:
    cursor: str
    node: MediaView


@strawberry.type(description="Views, newest first (the newest MEDIAGRAPH_VIEW_LOG_LENGTH are kept).")
class MediaViewConnection:
    edges: list[MediaViewEdge]
    page_info: relay.PageInfo

    @classmethod
    def from_page(cls, page: ViewPage, *, has_previous_page: bool) -> MediaViewConnection:
        edges = [
            MediaViewEdge(cursor=cursor, node=MediaView(viewer=User(id=strawberry.ID(viewer)), viewed_at=at))
            for (viewer, at), cursor in zip(page.views, page.cursors, strict=True)
        ]
        return cls(
            edges=edges,
            page_info=page_info(
                [edge.cursor for edge in edges],
                has_next_page=page.has_next_page,
                has_previous_page=has_previous_page,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )
