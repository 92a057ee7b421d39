"""updateMedia's input."""

from __future__ import annotations

import strawberry

from schema.types.enums import Visibility
from services.library.editing import MediaChanges


@strawberry.input(description="Only the fields you give change.")
class UpdateMediaInput:
    title: str | None = None
    tags: list[str] | None = strawberry.field(default=None, description="Replaces all tags.")
    visibility: Visibility | None = None

    def to_changes(self) -> MediaChanges:
        tags = tuple(self.tags) if self.tags is not None else None
        return MediaChanges(title=self.title, tags=tags, visibility=self.visibility)
