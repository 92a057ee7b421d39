"""Filters for media listings."""

from __future__ import annotations

import strawberry

from schema.types.media import MediaStatusEnum


@strawberry.input(description="Narrow a listing. Every filter is served by an index, never a scan.")
class MediaFilter:
    status: MediaStatusEnum | None = None  # type: ignore[valid-type]
