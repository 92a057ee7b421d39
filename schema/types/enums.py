"""The domain's enums, registered with Strawberry once. Type modules import them from here, so
the registration always happens before any type that uses them is built."""

from __future__ import annotations

import strawberry

from services.community.ranking import Ranking
from services.core.events import MediaEventType
from services.core.media import MediaStatus, Visibility
from services.core.ports import FriendshipState
from services.library.archive import Availability

strawberry.enum(MediaStatus, description="Where an upload is in its life.")
strawberry.enum(Visibility, description="Who may see a media item besides its owner.")
strawberry.enum(
    Availability,
    description="Whether the bytes can be read now. Glacier Instant Retrieval is AVAILABLE; "
    "RESTORE_REQUIRED: archived in Glacier Flexible Retrieval or Deep Archive, the url cannot be "
    "read until the object is restored; MISSING: the bytes are gone (see `mediagraph reconcile`).",
)
strawberry.enum(MediaEventType, description="What happened to the media.")
strawberry.enum(
    Ranking,
    name="FeedRanking",
    description="RECENT: newest first. POPULAR: all-time engagement. TRENDING: engagement with time decay.",
)

strawberry.enum(FriendshipState, name="FriendshipStatus", description="How you stand with another user.")

__all__ = ["Availability", "FriendshipState", "MediaEventType", "MediaStatus", "Ranking", "Visibility"]
