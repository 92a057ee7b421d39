"""GalleryService: who sees what, the caller's own listing, and waiting for an upload to finish."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from services.core.auth import Principal
from services.core.errors import BadUserInput, NotFound, Unauthenticated
from services.core.events import MediaEvent, MediaEventType, event_position
from services.core.media import Media, MediaStatus, Visibility, utcnow
from services.core.pagination import CursorCodec
from services.core.ports import ListFilter
from services.ingest.processing import ObjectCreated, ProcessingService
from services.library.gallery import GalleryService
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository, make_media
from tests.media_files import jpeg_bytes
from tests.pipeline import real_steps

ALICE = Principal(user_id="alice")
BOB = Principal(user_id="bob")
ADMIN = Principal(user_id="root", roles=frozenset({"admin"}))
T = TypeVar("T")
BASE = datetime(2026, 1, 1, 12, tzinfo=UTC)


@dataclass
class Env:
    gallery: GalleryService
    processing: ProcessingService
    repo: InMemoryMediaRepository
    blobs: InMemoryBlobStore
    bus: InMemoryEventBus
    added: int = 0

    async def add(
        self,
        owner: Principal = ALICE,
        *,
        status: MediaStatus = MediaStatus.COMPLETED,
        visibility: Visibility = Visibility.PRIVATE,
        age: timedelta = timedelta(0),
        data: bytes = b"\xff\xd8\xff bytes",
        expires_at: datetime | None = None,
    ) -> Media:
        # Fixed ids and times: listing positions, hence cursors, are the same on every run.
        self.added += 1
        if expires_at is None and status is MediaStatus.PENDING:
            expires_at = utcnow() + timedelta(hours=1)
        media = make_media(
            data,
            owner_id=owner.user_id,
            status=status,
            visibility=visibility,
            created_at=BASE - age,
            expires_at=expires_at,
            media_id=f"{owner.user_id}-{self.added:03d}",
        )
        await self.repo.create(media)
        return media

    async def expired(self, age: timedelta = timedelta(0)) -> Media:
        return await self.add(status=MediaStatus.PENDING, age=age, expires_at=utcnow() - timedelta(seconds=1))

    async def processing_rejected(self) -> Media:
        media = await self.add(status=MediaStatus.PENDING, data=jpeg_bytes())
        self.blobs.put(media.object_key, jpeg_bytes(), "image/jpeg")  # not the declared bytes
        await self.processing.handle(ObjectCreated(key=media.object_key))
        rejected = await self.repo.get(media.id)
        assert rejected is not None and rejected.status is MediaStatus.REJECTED
        return rejected


@pytest.fixture
def env() -> Env:
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore()
    bus = InMemoryEventBus(repo.outbox)
    return Env(
        GalleryService(repo, blobs, bus, CursorCodec(b"k" * 32)),
        ProcessingService(repo, blobs, bus, upload_prefix="uploads/", steps=real_steps(repo, blobs)),
        repo,
        blobs,
        bus,
    )


async def within(awaitable: asyncio.Future[T] | asyncio.Task[T], seconds: float = 2.0) -> T:
    return await asyncio.wait_for(awaitable, seconds)


@contextlib.asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close the subscription generator when the test is done with it, as Strawberry does."""
    try:
        yield stream
    finally:
        assert isinstance(stream, AsyncGenerator)
        await stream.aclose()


async def until_subscribed(bus: InMemoryEventBus, user_id: str) -> None:
    for _ in range(1000):
        if bus.subscriber_count(user_id):
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{user_id} never subscribed")


# --- get ---------------------------------------------------------------------------------


async def test_public_completed_media_is_visible_to_everyone(env: Env) -> None:
    media = await env.add(visibility=Visibility.PUBLIC)

    assert await env.gallery.get(BOB, media.id) == media
    assert await env.gallery.get(None, media.id) == media
    assert await env.gallery.get(ALICE, media.id) == media


@pytest.mark.parametrize("visibility", [Visibility.PRIVATE, Visibility.FRIENDS])
async def test_non_public_media_is_hidden_from_others(env: Env, visibility: Visibility) -> None:
    media = await env.add(visibility=visibility)

    assert await env.gallery.get(ALICE, media.id) == media
    for viewer in (BOB, None):
        with pytest.raises(NotFound):
            await env.gallery.get(viewer, media.id)


@pytest.mark.parametrize(
    "status", [MediaStatus.PENDING, MediaStatus.PROCESSING, MediaStatus.REJECTED, MediaStatus.QUARANTINED]
)
async def test_unfinished_or_refused_public_media_is_hidden_from_others(
    env: Env, status: MediaStatus
) -> None:
    media = await env.add(status=status, visibility=Visibility.PUBLIC)

    assert (await env.gallery.get(ALICE, media.id)).status is status
    for viewer in (BOB, None):
        with pytest.raises(NotFound):
            await env.gallery.get(viewer, media.id)


async def test_hidden_media_looks_exactly_like_absent_media(env: Env) -> None:
    hidden = await env.add(visibility=Visibility.PRIVATE)

    with pytest.raises(NotFound) as for_hidden:
        await env.gallery.get(BOB, hidden.id)
    with pytest.raises(NotFound) as for_absent:
        await env.gallery.get(BOB, "01JABSENT000000000000000000")

    assert for_hidden.value.message == for_absent.value.message
    assert for_hidden.value.extensions == for_absent.value.extensions


async def test_an_expired_pending_upload_is_gone_even_for_its_owner(env: Env) -> None:
    media = await env.expired()

    with pytest.raises(NotFound):
        await env.gallery.get(ALICE, media.id)


async def test_an_admin_sees_private_media_of_others(env: Env) -> None:
    media = await env.add(status=MediaStatus.PENDING, visibility=Visibility.PRIVATE)
    assert await env.gallery.get(ADMIN, media.id) == media


async def test_get_own_refuses_anyone_else(env: Env) -> None:
    media = await env.add(visibility=Visibility.PUBLIC)

    assert await env.gallery.get_own(ALICE, media.id) == media
    with pytest.raises(NotFound):
        await env.gallery.get_own(BOB, media.id)
    with pytest.raises(Unauthenticated):
        await env.gallery.get_own(None, media.id)


async def test_a_url_is_handed_out_only_for_visible_completed_media(env: Env) -> None:
    public = await env.add(visibility=Visibility.PUBLIC)
    private = await env.add(visibility=Visibility.PRIVATE)
    pending = await env.add(status=MediaStatus.PENDING)

    url = await env.gallery.url_for(BOB, public)
    assert url is not None and public.object_key in url
    assert await env.gallery.url_for(ALICE, private) is not None
    assert await env.gallery.url_for(BOB, private) is None
    assert await env.gallery.url_for(ALICE, pending) is None


# --- list_mine ---------------------------------------------------------------------------


async def walk(env: Env, viewer: Principal, first: int, status: MediaStatus | None = None) -> list[list[str]]:
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await env.gallery.list_mine(viewer, first=first, after=after, filter=ListFilter(status=status))
        assert len(page.cursors) == len(page.items)
        pages.append([media.id for media in page.items])
        if not page.has_next_page:
            return pages
        assert len(pages) < 100, "pagination does not terminate"
        after = page.cursors[-1]


async def test_list_mine_pages_newest_first_with_an_exact_has_next_page(env: Env) -> None:
    oldest_first = [await env.add(age=timedelta(minutes=10 - i)) for i in range(5)]
    await env.add(BOB)
    ids = [media.id for media in reversed(oldest_first)]

    assert await walk(env, ALICE, first=2) == [ids[0:2], ids[2:4], ids[4:5]]
    assert await walk(env, ALICE, first=5) == [ids]
    assert await walk(env, ALICE, first=6) == [ids]


async def test_a_last_page_that_is_exactly_full_says_there_is_no_next_page(env: Env) -> None:
    for i in range(4):
        await env.add(age=timedelta(minutes=i))

    first = await env.gallery.list_mine(ALICE, first=2, after=None)
    second = await env.gallery.list_mine(ALICE, first=2, after=first.cursors[-1])

    assert first.has_next_page is True
    assert len(second.items) == 2
    assert second.has_next_page is False


async def test_list_mine_filters_by_status(env: Env) -> None:
    done = await env.add(status=MediaStatus.COMPLETED, age=timedelta(minutes=2))
    await env.add(status=MediaStatus.REJECTED, age=timedelta(minutes=1))
    later = await env.add(status=MediaStatus.COMPLETED)

    assert await walk(env, ALICE, first=1, status=MediaStatus.COMPLETED) == [[later.id], [done.id]]


async def test_list_mine_of_someone_with_nothing_is_empty(env: Env) -> None:
    await env.add(ALICE)
    page = await env.gallery.list_mine(BOB, first=10, after=None)
    assert page.items == [] and page.cursors == [] and page.has_next_page is False


async def test_list_mine_leaves_out_expired_uploads(env: Env) -> None:
    kept = await env.add(status=MediaStatus.PENDING, age=timedelta(minutes=1))
    await env.expired()

    page = await env.gallery.list_mine(ALICE, first=10, after=None)
    assert [media.id for media in page.items] == [kept.id]


async def test_a_page_of_expired_uploads_can_still_be_paged_past(env: Env) -> None:
    old = await env.add(age=timedelta(hours=2))
    await env.expired(age=timedelta(minutes=1))
    await env.expired()

    # The hidden items are read past within the same request: the page still shows `old`,
    # and hasNextPage stays exact.
    page = await env.gallery.list_mine(ALICE, first=2, after=None)
    assert [media.id for media in page.items] == [old.id]
    assert not page.has_next_page


async def test_a_cursor_of_another_user_is_refused(env: Env) -> None:
    for i in range(3):
        await env.add(ALICE, age=timedelta(minutes=i))
        await env.add(BOB, age=timedelta(minutes=i))
    alices = await env.gallery.list_mine(ALICE, first=1, after=None)

    with pytest.raises(BadUserInput) as refused:
        await env.gallery.list_mine(BOB, first=1, after=alices.cursors[0])
    assert refused.value.extensions["field"] == "after"


async def test_a_cursor_of_another_status_filter_is_refused(env: Env) -> None:
    for i in range(3):
        await env.add(age=timedelta(minutes=i))
    unfiltered = await env.gallery.list_mine(ALICE, first=1, after=None)
    completed = await env.gallery.list_mine(
        ALICE, first=1, after=None, filter=ListFilter(status=MediaStatus.COMPLETED)
    )

    with pytest.raises(BadUserInput):
        await env.gallery.list_mine(
            ALICE, first=1, after=unfiltered.cursors[0], filter=ListFilter(status=MediaStatus.COMPLETED)
        )
    with pytest.raises(BadUserInput):
        await env.gallery.list_mine(ALICE, first=1, after=completed.cursors[0])
    with pytest.raises(BadUserInput):
        await env.gallery.list_mine(
            ALICE, first=1, after=completed.cursors[0], filter=ListFilter(status=MediaStatus.PENDING)
        )


async def test_a_tampered_cursor_is_refused(env: Env) -> None:
    for i in range(3):
        await env.add(age=timedelta(minutes=i))
    cursor = (await env.gallery.list_mine(ALICE, first=1, after=None)).cursors[0]

    for position in range(len(cursor)):
        flipped = "A" if cursor[position] != "A" else "B"
        tampered = cursor[:position] + flipped + cursor[position + 1 :]
        if position == len(cursor) - 1 and _raw(tampered) == _raw(cursor):
            continue  # only the last character's spare bits changed: the same cursor
        with pytest.raises(BadUserInput):
            await env.gallery.list_mine(ALICE, first=1, after=tampered)
    for garbage in ("", "not a cursor", "!!!!", cursor[:-4], "A" * 600):
        with pytest.raises(BadUserInput):
            await env.gallery.list_mine(ALICE, first=1, after=garbage)


def _raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


@pytest.mark.parametrize("first", [0, -1, 101, 10_000])
async def test_first_out_of_range_is_refused(env: Env, first: int) -> None:
    with pytest.raises(BadUserInput) as refused:
        await env.gallery.list_mine(ALICE, first=first, after=None)
    assert refused.value.extensions["field"] == "first"


async def test_first_defaults_to_twenty_and_allows_a_hundred(env: Env) -> None:
    for i in range(25):
        await env.add(age=timedelta(seconds=i))

    default = await env.gallery.list_mine(ALICE, first=None, after=None)
    hundred = await env.gallery.list_mine(ALICE, first=100, after=None)

    assert len(default.items) == 20 and default.has_next_page
    assert len(hundred.items) == 25 and not hundred.has_next_page


async def test_list_mine_needs_a_caller(env: Env) -> None:
    with pytest.raises(Unauthenticated):
        await env.gallery.list_mine(None, first=1, after=None)


# --- completions -------------------------------------------------------------------------


async def first_completion(stream: AsyncIterator[Media]) -> Media:
    return await within(asyncio.ensure_future(anext(stream)))


async def test_an_already_completed_upload_answers_at_once_and_ends(env: Env) -> None:
    media = await env.add(status=MediaStatus.COMPLETED)

    async with closing(env.gallery.completions(ALICE, media.id)) as stream:
        assert await first_completion(stream) == media
        with pytest.raises(StopAsyncIteration):
            await within(asyncio.ensure_future(anext(stream)))
    assert env.bus.subscriber_count("alice") == 0


async def test_a_rejected_upload_raises_bad_user_input(env: Env) -> None:
    media = await env.processing_rejected()

    async with closing(env.gallery.completions(ALICE, media.id)) as stream:
        with pytest.raises(BadUserInput) as refused:
            await first_completion(stream)
    assert refused.value.extensions["status"] == "REJECTED"
    assert "checksum mismatch" in refused.value.message


@pytest.mark.parametrize("viewer", [BOB, ADMIN])
async def test_completions_of_another_users_upload_are_not_found(env: Env, viewer: Principal) -> None:
    media = await env.add(status=MediaStatus.PENDING, visibility=Visibility.PUBLIC)

    async with closing(env.gallery.completions(viewer, media.id)) as stream:
        with pytest.raises(NotFound):
            await first_completion(stream)


async def test_completions_of_an_unknown_id_are_not_found(env: Env) -> None:
    async with closing(env.gallery.completions(ALICE, "01JABSENT000000000000000000")) as stream:
        with pytest.raises(NotFound):
            await first_completion(stream)


async def test_completions_need_a_caller(env: Env) -> None:
    async with closing(env.gallery.completions(None, None)) as stream:
        with pytest.raises(Unauthenticated):
            await first_completion(stream)


async def test_a_completion_after_subscribing_is_received(env: Env) -> None:
    data = jpeg_bytes()
    media = await env.add(status=MediaStatus.PENDING, data=data)
    other = await env.add(status=MediaStatus.PENDING, data=data)
    for upload in (media, other):
        env.blobs.put(upload.object_key, data, "image/jpeg")

    async with closing(env.gallery.completions(ALICE, media.id)) as stream:
        waiting = asyncio.ensure_future(anext(stream))
        await until_subscribed(env.bus, "alice")
        assert not waiting.done()

        # Another of her uploads finishing first is not the one she waits for.
        await env.processing.handle(ObjectCreated(key=other.object_key))
        await env.processing.handle(ObjectCreated(key=media.object_key))

        completed = await within(waiting)
    assert completed.id == media.id
    assert completed.status is MediaStatus.COMPLETED
    assert env.bus.subscriber_count("alice") == 0


async def test_a_rejection_after_subscribing_raises(env: Env) -> None:
    media = await env.add(status=MediaStatus.PENDING, data=jpeg_bytes())
    env.blobs.put(media.object_key, jpeg_bytes(), "image/jpeg")  # other bytes than declared

    async with closing(env.gallery.completions(ALICE, media.id)) as stream:
        waiting = asyncio.ensure_future(anext(stream))
        await until_subscribed(env.bus, "alice")
        await env.processing.handle(ObjectCreated(key=media.object_key))
        with pytest.raises(BadUserInput):
            await within(waiting)


async def test_completions_without_an_id_follow_only_the_callers_uploads(env: Env) -> None:
    data = jpeg_bytes()
    bobs = await env.add(BOB, status=MediaStatus.PENDING, data=data)
    alices = await env.add(ALICE, status=MediaStatus.PENDING, data=data)
    for upload in (bobs, alices):
        env.blobs.put(upload.object_key, data, "image/jpeg")

    async with closing(env.gallery.completions(ALICE, None)) as stream:
        waiting = asyncio.ensure_future(anext(stream))
        await until_subscribed(env.bus, "alice")
        await env.processing.handle(ObjectCreated(key=bobs.object_key))
        await env.processing.handle(ObjectCreated(key=alices.object_key))
        assert (await within(waiting)).id == alices.id


async def test_events_deliver_every_change_of_the_callers_media(env: Env) -> None:
    media = await env.add(status=MediaStatus.PENDING)

    async with closing(env.gallery.events(ALICE)) as stream:
        waiting = asyncio.ensure_future(anext(stream))
        await until_subscribed(env.bus, "alice")
        await env.bus.publish(MediaEvent(MediaEventType.UPDATED, media, utcnow()))
        event = await within(waiting)
    assert (event.type, event.media.id) == (MediaEventType.UPDATED, media.id)
    assert event.event_id


@pytest.mark.parametrize("since", ["yesterday", "12", "1-2-3", "-1-0", ""])
async def test_events_refuse_a_since_that_is_not_an_event_id(env: Env, since: str) -> None:
    with pytest.raises(BadUserInput) as raised:
        await anext(env.gallery.events(ALICE, since))
    assert raised.value.extensions == {"reason": "MALFORMED_SINCE"}
    assert env.bus.subscriber_count("alice") == 0


async def test_events_since_an_id_replay_only_later_events_of_the_caller(env: Env) -> None:
    mine = [await env.add() for _ in range(3)]
    theirs = await env.add(BOB)
    ids = [await env.bus.publish(MediaEvent(MediaEventType.UPDATED, media, utcnow())) for media in mine]
    await env.bus.publish(MediaEvent(MediaEventType.UPDATED, theirs, utcnow()))
    assert ids[0] is not None
    async with closing(env.gallery.events(ALICE, ids[0])) as stream:
        replayed = [await within(asyncio.ensure_future(anext(stream))) for _ in range(2)]
    assert [event.media.id for event in replayed] == [media.id for media in mine[1:]]


def test_event_ids_compare_as_numbers_not_as_text() -> None:
    assert event_position("9-0") < event_position("10-0")
    assert event_position("10-2") < event_position("10-10")
