"""Relay-style connections of Media, with signed cursors from the service layer."""

from __future__ import annotations

from typing import Self

import strawberry
from strawberry import relay

from schema.types.media import Media
from services.library.gallery import MediaPage


def page_info(
    cursors: list[str], *, has_next_page: bool, has_previous_page: bool, end_cursor: str | None
) -> relay.PageInfo:
    """Relay page info of one page; `end_cursor` may lie past the last edge (a hidden item read)."""
    return relay.PageInfo(
        has_next_page=has_next_page,
        has_previous_page=has_previous_page,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=end_cursor,
    )


@strawberry.type
class MediaEdge:
    cursor: str
    node: Media


@strawberry.type(description="A page of media, newest first. Cursors are opaque and signed.")
class MediaConnection:
    edges: list[MediaEdge]
    page_info: relay.PageInfo
    total_count: int | None = strawberry.field(
        description="Exact number of items in the whole list, where it is kept without scanning "
        "(your own media, unfiltered or by status); null elsewhere."
    )

    @classmethod
    def from_page(cls, page: MediaPage, *, has_previous_page: bool) -> Self:
        edges = [
            MediaEdge(cursor=cursor, node=Media.from_model(media))
            for media, cursor in zip(page.items, page.cursors, strict=True)
        ]
        return cls(
            total_count=page.total_count,
            edges=edges,
            page_info=page_info(
                [edge.cursor for edge in edges],
                has_next_page=page.has_next_page,
                has_previous_page=has_previous_page,
                end_cursor=page.end_cursor,
            ),
        )
