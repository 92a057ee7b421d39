"""One read, one look at the friend graph: within a read scope, the friendships and blocks
between the viewer and an owner are read at most once.

A page of media checks visibility when it is listed and again for every `url`, `availability`
and thumbnail URL (each re-checks: a Media may reach a field from anywhere, a mutation's result
included). Without a scope each check reads the graph; inside one, a listing and all its fields
share one batched read. The API opens a scope around each HTTP request (infra/roots/app.py),
never around a WebSocket operation (a subscription lives for hours). Every write to the graph
(services/community/social.py) calls `forget`, so a mutation document that blocks a user in one
field sees the block in the next.

A ContextVar, not an argument: the scope must reach GalleryService.visible through every path
(services, feed, DataLoader batches, which inherit the context of the request that created
them) without threading a parameter through each signature. Outside a scope nothing is memoized.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from services.core.ports import FriendGraph, Relations


@dataclass(slots=True)
class _Memo:
    read: dict[str, set[str]] = field(default_factory=dict)  # viewer -> owners already read
    friends: dict[str, set[str]] = field(default_factory=dict)
    blocked: dict[str, set[str]] = field(default_factory=dict)


_SCOPE: ContextVar[_Memo | None] = ContextVar("mediagraph_read_scope", default=None)


@contextlib.contextmanager
def read_scope() -> Iterator[None]:
    """Memoize the friend graph for the duration of one read (nesting keeps the outer scope)."""
    if _SCOPE.get() is not None:
        yield
        return
    token = _SCOPE.set(_Memo())
    try:
        yield
    finally:
        _SCOPE.reset(token)


def forget() -> None:
    """The graph changed: later reads in this scope read it again."""
    memo = _SCOPE.get()
    if memo is not None:
        memo.read.clear()
        memo.friends.clear()
        memo.blocked.clear()


async def relations(graph: FriendGraph, viewer_id: str, others: set[str]) -> Relations:
    """`graph.relations`, reading only the owners not read yet in the current scope."""
    memo = _SCOPE.get()
    if memo is None:
        return await graph.relations(viewer_id, others)
    read = memo.read.setdefault(viewer_id, set())
    friends = memo.friends.setdefault(viewer_id, set())
    blocked = memo.blocked.setdefault(viewer_id, set())
    missing = others - read
    if missing:
        found = await graph.relations(viewer_id, missing)
        friends |= found.friends & missing
        blocked |= found.blocked & missing
        read |= missing
    return Relations(friends=frozenset(friends & others), blocked=frozenset(blocked & others))
