"""Friends and blocks. A user exists once they have called the API with a valid token.

    requestFriend(b)   A asks B; if B had already asked A, they become friends at once
    acceptFriend(b)    A accepts B's pending request
    removeFriend(b)    friendship (or pending requests) between A and B end
    blockUser(b)       A blocks B: friendship and requests end, and each stops seeing the other

Every change that narrows who may see what (unfriend, block) also drops both users' cached media
URLs, so nobody newly refused is handed one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.access import read_scope
from services.core.auth import Principal, require
from services.core.errors import BadUserInput, NotFound
from services.core.pagination import CursorCodec, page_size
from services.core.ports import FriendshipState, SocialStore
from services.library.delivery import UrlMinter

MAX_USER_ID_LENGTH = 128
log = logging.getLogger("mediagraph.social")


@dataclass(frozen=True, slots=True)
class UserPage:
    user_ids: list[str]
    cursors: list[str]
    has_next_page: bool
    end_cursor: str | None


class SocialService:
    def __init__(self, store: SocialStore, cursors: CursorCodec, urls: UrlMinter | None = None) -> None:
        self._store = store
        self._cursors = cursors
        self._urls = urls
        self._known: set[str] = set()  # users this process has recorded: one write per process

    async def touch(self, principal: Principal) -> None:
        """Best effort: a failing user directory must not refuse an otherwise valid call (the
        next call records the user)."""
        if principal.user_id not in self._known:
            try:
                await self._store.touch_user(principal.user_id)
            except Exception:
                log.warning("could not record the user; will retry on their next call", exc_info=True)
                return
            if len(self._known) > 100_000:
                self._known.clear()
            self._known.add(principal.user_id)

    async def request(self, viewer: Principal | None, other: str) -> FriendshipState:
        """Raises NotFound for an unknown user (or one who blocked the caller), BadUserInput for self."""
        principal = await self._counterpart(viewer, other)
        state = await self._store.state(principal.user_id, other)
        if state is FriendshipState.BLOCKED:
            raise NotFound("user not found")  # a block looks like absence
        if state in (FriendshipState.FRIENDS, FriendshipState.REQUESTED):
            return state
        if state is FriendshipState.INCOMING:
            await self._store.befriend(principal.user_id, other)
            read_scope.forget()
            return FriendshipState.FRIENDS
        await self._store.request(principal.user_id, other)
        return FriendshipState.REQUESTED

    async def accept(self, viewer: Principal | None, other: str) -> FriendshipState:
        """Raises NotFound when there is no pending request from `other`."""
        principal = await self._counterpart(viewer, other)
        state = await self._store.state(principal.user_id, other)
        if state is FriendshipState.FRIENDS:
            return state
        if state is not FriendshipState.INCOMING:
            raise NotFound("no friend request from this user")
        await self._store.befriend(principal.user_id, other)
        read_scope.forget()
        return FriendshipState.FRIENDS

    async def remove(self, viewer: Principal | None, other: str) -> bool:
        principal = await self._counterpart(viewer, other)
        await self._store.unfriend(principal.user_id, other)
        read_scope.forget()
        if self._urls is not None:
            await self._urls.forget(principal.user_id, other)
        return True

    async def block(self, viewer: Principal | None, other: str) -> bool:
        principal = await self._counterpart(viewer, other)
        await self._store.block(principal.user_id, other)
        read_scope.forget()
        if self._urls is not None:
            await self._urls.forget(principal.user_id, other)
        return True

    async def state(self, viewer: Principal | None, other: str) -> FriendshipState:
        principal = require(viewer)
        return await self._store.state(principal.user_id, other)

    async def friends(self, viewer: Principal | None, *, first: int | None, after: str | None) -> UserPage:
        return await self._list(viewer, FriendshipState.FRIENDS, first, after)

    async def requests(self, viewer: Principal | None, *, first: int | None, after: str | None) -> UserPage:
        return await self._list(viewer, FriendshipState.INCOMING, first, after)

    async def _list(
        self, viewer: Principal | None, state: FriendshipState, first: int | None, after: str | None
    ) -> UserPage:
        principal = require(viewer)
        scope = f"{state.value}|{principal.user_id}"
        limit = page_size(first)
        position = self._cursors.decode(after, scope)
        ids, more = await self._store.list_related(principal.user_id, state, limit=limit, after=position)
        cursors = [self._cursors.encode(user_id, scope) for user_id in ids]
        return UserPage(ids, cursors, more, cursors[-1] if cursors else None)

    async def _counterpart(self, viewer: Principal | None, other: str) -> Principal:
        principal = require(viewer)
        if not 0 < len(other) <= MAX_USER_ID_LENGTH:
            raise BadUserInput("userId: 1-128 characters", field="userId")
        if other == principal.user_id:
            raise BadUserInput("that is you", field="userId")
        if not await self._store.user_exists(other):
            raise NotFound("user not found")
        return principal
