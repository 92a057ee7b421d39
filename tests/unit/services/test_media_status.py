"""mediaStatus at its seams (services/library/media_status.py): a change that lands between the
subscription opening and the record read is shown once, under an eventId a resume can use; a
resume after the last state ends at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from services.core.auth import Principal
from services.core.errors import NotFound
from services.core.events import MediaEvent, MediaEventType, event_position
from services.core.media import Media, MediaStatus
from services.core.pagination import CursorCodec
from services.library.gallery import GalleryService
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository, make_media

ALICE = Principal(user_id="alice")
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


class RacingBus(InMemoryEventBus):
    """Runs `meanwhile` right after mediaStatus has read the bus position, before it reads the
    record: the narrowest window a worker's change can land in."""

    meanwhile: Callable[[], Awaitable[None]] | None = None

    async def last_id(self, user_id: str) -> str:
        position = await super().last_id(user_id)
        if self.meanwhile is not None:
            change, self.meanwhile = self.meanwhile, None
            await change()
        return position


@pytest.fixture
def repo() -> InMemoryMediaRepository:
    return InMemoryMediaRepository()


@pytest.fixture
def bus() -> RacingBus:
    return RacingBus()


@pytest.fixture
def gallery(repo: InMemoryMediaRepository, bus: RacingBus) -> GalleryService:
    return GalleryService(repo, InMemoryBlobStore(), bus, CursorCodec(b"k" * 32))


async def _change(
    repo: InMemoryMediaRepository, bus: InMemoryEventBus, media: Media, to: MediaStatus, kind: MediaEventType
) -> Media:
    changed = media.transition(to, NOW)
    await repo.save(changed, expected_version=media.version, previous=media)
    await bus.publish(MediaEvent(kind, changed, NOW))
    return changed


async def _pending(repo: InMemoryMediaRepository, bus: InMemoryEventBus) -> Media:
    media = make_media(b"\xff\xd8\xff bytes", owner_id="alice", media_id="alice-001")
    await repo.create(media)
    await bus.publish(MediaEvent(MediaEventType.CREATED, media, NOW))
    return media


async def _collect(gallery: GalleryService, media_id: str, since: str | None = None) -> list[MediaEvent]:
    async def run() -> list[MediaEvent]:
        return [event async for event in gallery.status(ALICE, media_id, since)]

    return await asyncio.wait_for(run(), 5)


async def test_a_change_between_subscribing_and_reading_is_shown_once_under_its_own_id(
    gallery: GalleryService, repo: InMemoryMediaRepository, bus: RacingBus
) -> None:
    media = await _pending(repo, bus)
    processing: list[Media] = []

    async def start_processing() -> None:
        processing.append(await _change(repo, bus, media, MediaStatus.PROCESSING, MediaEventType.PROCESSING))

    bus.meanwhile = start_processing
    stream = gallery.status(ALICE, media.id)
    first = await asyncio.wait_for(anext(stream), 5)
    await _change(repo, bus, processing[0], MediaStatus.COMPLETED, MediaEventType.COMPLETED)
    rest = [event async for event in stream]

    assert [first.type, *(event.type for event in rest)] == [
        MediaEventType.PROCESSING,
        MediaEventType.COMPLETED,
    ]
    published = {event.type: event.event_id for event in bus.published}
    assert first.event_id == published[MediaEventType.PROCESSING]  # the id it was announced under
    # Resuming from the first event gives exactly what followed it.
    assert [event.type for event in await _collect(gallery, media.id, first.event_id)] == [
        MediaEventType.COMPLETED
    ]


async def test_when_the_announcing_id_is_unknown_the_position_before_the_record_is_given(
    gallery: GalleryService, repo: InMemoryMediaRepository, bus: RacingBus
) -> None:
    media = await _pending(repo, bus)
    edited = media.edit(NOW, title="renamed")  # a newer version: CREATED's marker no longer matches
    await repo.save(edited, expected_version=media.version, previous=media)
    before = await bus.last_id("alice")
    stream = gallery.status(ALICE, media.id)
    first = await asyncio.wait_for(anext(stream), 5)
    assert (first.type, first.event_id) == (MediaEventType.CREATED, before)
    await _change(repo, bus, edited, MediaStatus.REJECTED, MediaEventType.REJECTED)
    assert [event.type async for event in stream] == [MediaEventType.REJECTED]


async def test_a_resume_after_the_last_state_ends_at_once_and_a_fresh_one_repeats_it(
    gallery: GalleryService, repo: InMemoryMediaRepository, bus: RacingBus
) -> None:
    media = await _pending(repo, bus)
    done = await _change(repo, bus, media, MediaStatus.COMPLETED, MediaEventType.COMPLETED)
    last = bus.published[-1].event_id
    assert await _collect(gallery, media.id, last) == []
    [fresh] = await _collect(gallery, media.id)
    assert (fresh.type, fresh.event_id, fresh.media) == (MediaEventType.COMPLETED, last, done)
    # From before the end: the end itself, once.
    earlier = f"{event_position(last)[0] - 1}-0"
    assert [event.type for event in await _collect(gallery, media.id, earlier)] == [MediaEventType.COMPLETED]


async def test_a_deleted_media_ends_the_subscription_and_is_then_not_found(
    gallery: GalleryService, repo: InMemoryMediaRepository, bus: RacingBus
) -> None:
    media = await _pending(repo, bus)
    stream = gallery.status(ALICE, media.id)
    assert (await asyncio.wait_for(anext(stream), 5)).type is MediaEventType.CREATED
    deleted = media.transition(MediaStatus.DELETED, NOW)
    await repo.save(deleted, expected_version=media.version, previous=media)
    await bus.publish(MediaEvent(MediaEventType.DELETED, deleted, NOW))
    assert [event.type async for event in stream] == [MediaEventType.DELETED]
    with pytest.raises(NotFound):
        await _collect(gallery, media.id)
