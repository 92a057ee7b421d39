"""Filters for media listings."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.types.enums import MediaStatus
from services.core.ports import ListFilter


@strawberry.input(description="Narrow a listing. Every filter is served by an index, never a scan.")
class MediaFilter:
    status: MediaStatus | None = None
    tag: str | None = strawberry.field(default=None, description="A hashtag, with or without '#'.")
    created_after: datetime | None = strawberry.field(default=None, description="Inclusive.")
    created_before: datetime | None = strawberry.field(default=None, description="Inclusive.")

    def to_filter(self) -> ListFilter:
        return ListFilter(self.status, self.tag, self.created_after, self.created_before)
