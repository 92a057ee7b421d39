"""MediaEvent: one change of one of the caller's media, as pushed to subscribers."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.types.enums import MediaEventType
from schema.types.media import Media
from services.core.events import MediaEvent as MediaEventModel


@strawberry.type
class MediaEvent:
    event_id: str = strawberry.field(description="Position in the owner's event stream.")
    type: MediaEventType
    media: Media
    occurred_at: datetime

    @classmethod
    def from_model(cls, event: MediaEventModel) -> MediaEvent:
        return cls(
            event_id=event.event_id,
            type=event.type,
            media=Media.from_model(event.media),
            occurred_at=event.occurred_at,
        )
