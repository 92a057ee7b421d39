"""Relay-style connections: one generic Connection[T]/Edge[T] for every list, with signed
cursors from the service layer. Strawberry names a specialisation after its node type
(Connection[User] is `UserConnection`, Edge[Media] is `MediaEdge`); a subclass adds a
description or fields (MediaConnection's totalCount)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Self, TypeVar

import strawberry
from strawberry import relay

from schema.types.media import Media
from schema.types.prefetch import Prefetched
from services.library.gallery import MediaPage

NodeT = TypeVar("NodeT")


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: relay.PageInfo

    @classmethod
    def of(
        cls,
        nodes: Sequence[NodeT],
        cursors: list[str],
        *,
        has_next_page: bool,
        has_previous_page: bool,
        end_cursor: str | None,
        **fields: Any,
    ) -> Self:
        """One page; `end_cursor` may lie past the last edge (a hidden item read)."""
        return cls(
            edges=[Edge(cursor=cursor, node=node) for node, cursor in zip(nodes, cursors, strict=True)],
            page_info=relay.PageInfo(
                has_next_page=has_next_page,
                has_previous_page=has_previous_page,
                start_cursor=cursors[0] if cursors else None,
                end_cursor=end_cursor,
            ),
            **fields,
        )


@strawberry.type(description="A page of media, newest first. Cursors are opaque and signed.")
class MediaConnection(Connection[Media]):
    total_count: int | None = strawberry.field(
        description="Exact number of items in the whole list, where it is kept without scanning "
        "(your own media, unfiltered or by status); null elsewhere."
    )

    @classmethod
    def from_page(
        cls, page: MediaPage, *, has_previous_page: bool, prefetched: Prefetched | None = None
    ) -> Self:
        return cls.of(
            [Media.from_model(media, prefetched) for media in page.items],
            page.cursors,
            has_next_page=page.has_next_page,
            has_previous_page=has_previous_page,
            end_cursor=page.end_cursor,
            total_count=page.total_count,
        )
