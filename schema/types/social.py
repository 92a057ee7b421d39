"""Friends, friend requests and the view log."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry

from schema.types.connection import Connection
from schema.types.enums import FriendshipState
from schema.types.media import User
from services.community.social import UserPage
from services.library.views import ViewPage


@strawberry.type(description="You and another user.")
class Friendship:
    user: User
    status: FriendshipState


UserConnection = Connection[User]


def user_connection(page: UserPage, *, has_previous_page: bool) -> UserConnection:
    return UserConnection.of(
        [User(id=strawberry.ID(user_id)) for user_id in page.user_ids],
        page.cursors,
        has_next_page=page.has_next_page,
        has_previous_page=has_previous_page,
        end_cursor=page.end_cursor,
    )


@strawberry.type(description="One view of your media: who, and when.")
class MediaView:
    viewer: User
    viewed_at: datetime


@strawberry.type(description="Views, newest first (the newest MEDIAGRAPH_VIEW_LOG_LENGTH are kept).")
class MediaViewConnection(Connection[MediaView]):
    @classmethod
    def from_page(cls, page: ViewPage, *, has_previous_page: bool) -> Self:
        return cls.of(
            [MediaView(viewer=User(id=strawberry.ID(viewer)), viewed_at=at) for viewer, at in page.views],
            page.cursors,
            has_next_page=page.has_next_page,
            has_previous_page=has_previous_page,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )
