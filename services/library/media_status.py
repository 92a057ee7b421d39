"""mediaStatus: every state of one media, from the one it is in now to the last.

Without `since`, the first event is the media's current state. Its eventId is the id its
current status was announced under when the bus still knows it (then a resume from it
is exact), otherwise a position read before the record: nothing after it can be missed,
and live events the record already shows are not sent again. With `since`, the media's
events after it, then live ones, as mediaEvents does. Either way the subscription ends
after a terminal state (COMPLETED, REJECTED, QUARANTINED) or DELETED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from services.core.auth import Principal, require
from services.core.events import MediaEvent, MediaEventType, event_position
from services.core.media import Media, MediaStatus
from services.core.ports import EventBus

# The event that announces each status; DELETED media is not found, so it has none here.
EVENT_FOR_STATUS = {
    MediaStatus.PENDING: MediaEventType.CREATED,
    MediaStatus.PROCESSING: MediaEventType.PROCESSING,
    MediaStatus.COMPLETED: MediaEventType.COMPLETED,
    MediaStatus.REJECTED: MediaEventType.REJECTED,
    MediaStatus.QUARANTINED: MediaEventType.QUARANTINED,
}
TERMINAL = frozenset({MediaStatus.COMPLETED, MediaStatus.REJECTED, MediaStatus.QUARANTINED})
# Events that change the status; UPDATED (title, tags) and RESTORED do not, or cannot come.
_STATUS_EVENTS = frozenset({*EVENT_FOR_STATUS.values(), MediaEventType.DELETED})
_LAST_EVENTS = frozenset(
    {MediaEventType.COMPLETED, MediaEventType.REJECTED, MediaEventType.QUARANTINED, MediaEventType.DELETED}
)


async def status_events(
    bus: EventBus,
    get_visible: Callable[[Principal, str], Awaitable[Media]],
    viewer: Principal | None,
    media_id: str,
    since: str | None,
) -> AsyncIterator[MediaEvent]:
    """`get_visible` raises NotFound for a media the viewer may not see, absent or not."""
    principal = require(viewer)
    if since is not None:
        event_position(since)  # MALFORMED_SINCE before anything is read
    owner = (await get_visible(principal, media_id)).owner_id
    if since is not None:
        async for event in _resumed(bus, get_visible, principal, owner, media_id, since):
            yield event
        return
    async with bus.subscribe(owner) as subscription:
        # The bus position before the record: whatever happens after it is live or in the record.
        before = await bus.last_id(owner)
        media = await get_visible(principal, media_id)
        current = MediaEvent(EVENT_FOR_STATUS[media.status], media, media.updated_at)
        event_id = await bus.published_id(current) or before
        yield _with_id(current, event_id)
        if media.status in TERMINAL:
            return
        seen = event_position(event_id)
        async for event in subscription:
            if event.media.id != media_id or event.type not in _STATUS_EVENTS:
                continue
            if event_position(event.event_id) <= seen or event.media.version <= media.version:
                continue  # the first event already showed it
            yield event
            if event.type in _LAST_EVENTS:
                return


async def _resumed(
    bus: EventBus,
    get_visible: Callable[[Principal, str], Awaitable[Media]],
    principal: Principal,
    owner: str,
    media_id: str,
    since: str,
) -> AsyncIterator[MediaEvent]:
    async with bus.subscribe(owner, since) as subscription:
        media = await get_visible(principal, media_id)
        if media.status in TERMINAL:
            last = await bus.published_id(MediaEvent(EVENT_FOR_STATUS[media.status], media, media.updated_at))
            if last is not None and event_position(last) <= event_position(since):
                return  # the client has had the last state already: nothing will follow
        async for event in subscription:
            if event.media.id != media_id or event.type not in _STATUS_EVENTS:
                continue
            yield event
            if event.type in _LAST_EVENTS:
                return


def _with_id(event: MediaEvent, event_id: str) -> MediaEvent:
    return MediaEvent(event.type, event.media, event.occurred_at, event_id)
