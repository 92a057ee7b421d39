"""Media events: what subscribers are told when a media record changes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.core.errors import BadUserInput
from services.core.media import Media


class MediaEventType(StrEnum):
    CREATED = "CREATED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    QUARANTINED = "QUARANTINED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"
    RESTORED = "RESTORED"


# `<epoch>.<ms>-<seq>`: the epoch names the event history the id belongs to (a new one starts
# when Redis lost the old), `<ms>-<seq>` is the Stream entry id. Ids from before epochs existed
# have none.
_EVENT_ID = re.compile(r"^(?:([0-9a-z]{1,32})\.)?(\d{1,20})-(\d{1,20})$")


def _match(event_id: str) -> re.Match[str]:
    match = _EVENT_ID.match(event_id)
    if match is None:
        raise BadUserInput("since must be an eventId received from mediaEvents", reason="MALFORMED_SINCE")
    return match


def event_position(event_id: str) -> tuple[int, int]:
    """An event id's place in its history as a comparable pair: ids order by (ms, seq), not as
    strings ("9-0" < "10-0"). Raises BadUserInput (reason MALFORMED_SINCE) for anything else."""
    match = _match(event_id)
    return int(match.group(2)), int(match.group(3))


def event_epoch(event_id: str) -> str | None:
    """The history an event id belongs to; None for an id from before epochs."""
    return _match(event_id).group(1)


class EventsExpired(BadUserInput):
    """Events after `since` are no longer kept: the client must refetch its state."""

    def __init__(self, since: str) -> None:
        super().__init__(
            f"events after {since} are no longer kept; refetch, then subscribe without since",
            reason="SINCE_EXPIRED",
        )


_ONCE_PER_MEDIA = frozenset({MediaEventType.COMPLETED, MediaEventType.REJECTED, MediaEventType.QUARANTINED})


@dataclass(frozen=True, slots=True)
class MediaEvent:
    type: MediaEventType
    media: Media
    occurred_at: datetime
    event_id: str = ""  # assigned by the bus when published (a Redis Stream id)

    @property
    def owner_id(self) -> str:
        return self.media.owner_id

    @property
    def dedupe_key(self) -> str:
        """Same key for the same change: a redelivered S3 event publishes nothing twice.

        Processing outcomes happen once per media, whatever edits follow, so their key
        leaves the version out: a late duplicate notice after an edit stays silent."""
        if self.type in _ONCE_PER_MEDIA:
            # ...once per review round: a released or reported media may be announced again.
            round_ = f":r{self.media.review_round}" if self.media.review_round else ""
            return f"{self.media.id}:{self.type}{round_}"
        return f"{self.media.id}:{self.media.version}:{self.type}"

    @property
    def outbox_key(self) -> str:
        """Where the change waits in the transactional outbox until published: one per write
        (a media's version changes with each), ordered as the media's changes are."""
        return f"{self.media.id}#{self.media.version:012d}#{self.type}"

    def to_record(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "media": self.media.to_record(),
            "occurred_at": self.occurred_at.isoformat(),
            "event_id": self.event_id,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MediaEvent:
        return cls(
            type=MediaEventType(record["type"]),
            media=Media.from_record(record["media"]),
            occurred_at=datetime.fromisoformat(record["occurred_at"]),
            event_id=record.get("event_id", ""),
        )
