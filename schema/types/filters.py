"""Filters for media listings."""

from __future__ import annotations

import strawberry

from services.media import MediaStatus


@strawberry.input(description="Narrow a listing. Every filter is served by an index, never a scan.")
class MediaFilter:
    status: MediaStatus | None = None
