"""RedisEventBus against the real Redis: one connection per process, per-user isolation,
bounded queues, publish-once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from ulid import ULID

from infra.redis.bus import RedisEventBus, SlowConsumer
from infra.settings import Settings
from services.core.events import EventsExpired, MediaEvent, MediaEventType, event_epoch, event_position
from services.core.media import Media, MediaStatus
from tests.fakes import make_media
from tests.servers import eventually
from tests.streams import stream_entries

pytestmark = pytest.mark.integration


def _media(owner: str, media_id: str = "01MEDIA") -> Media:
    return make_media(b"x", owner_id=owner, status=MediaStatus.COMPLETED, media_id=media_id)


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[RedisEventBus]:
    redis = Redis.from_url(settings.redis_url, client_name=f"{settings.redis_prefix}bus")
    bus = RedisEventBus(redis, prefix=settings.redis_prefix, queue_size=5)
    await bus.start()
    yield bus
    await bus.close()
    await redis.aclose()


async def _pubsub_connections(settings: Settings) -> int:
    async with Redis.from_url(settings.redis_url) as admin:
        clients = await admin.client_list()
    return sum(
        1 for c in clients if c.get("name") == f"{settings.redis_prefix}bus" and int(c.get("sub", 0)) > 0
    )


async def test_one_redis_connection_serves_every_subscriber(bus: RedisEventBus, settings: Settings) -> None:
    async with contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(bus.subscribe(f"user{i % 10}")) for i in range(200)]
        assert bus.local_subscribers == 200
        assert await _pubsub_connections(settings) == 1
        await bus.publish(MediaEvent(MediaEventType.COMPLETED, _media("user3"), datetime.now(UTC)))
        received = [await asyncio.wait_for(anext(aiter(sub)), 5) for sub in subs[3::10]]
        assert {event.media.owner_id for event in received} == {"user3"}
        for sub in subs:
            if sub.user_id != "user3":
                assert sub.queue.empty()
    assert bus.local_subscribers == 0


async def test_the_same_change_is_published_once(bus: RedisEventBus) -> None:
    event = MediaEvent(MediaEventType.COMPLETED, _media("alice"), datetime.now(UTC))
    async with bus.subscribe("alice") as sub:
        first = await bus.publish(event)
        second = await bus.publish(event)
        assert first is not None and second is None
        events = aiter(sub)
        received = await asyncio.wait_for(anext(events), 5)
        assert received.event_id == first
        # A later change arrives next: a duplicate, published before it, would have come first.
        later = await bus.publish(
            MediaEvent(MediaEventType.UPDATED, _media("alice", "01LATER"), datetime.now(UTC))
        )
        assert (await asyncio.wait_for(anext(events), 5)).event_id == later
        assert sub.queue.empty()


async def test_a_subscriber_that_never_reads_is_cut_off(bus: RedisEventBus) -> None:
    async with bus.subscribe("alice") as sub:
        for i in range(8):  # queue_size is 5
            await bus.publish(
                MediaEvent(MediaEventType.UPDATED, _media("alice", f"01M{i}"), datetime.now(UTC))
            )
        await eventually(lambda: _overflowed(sub), timeout=5)  # the sixth found the queue full
        assert sub.queue.qsize() == 5  # bounded: the rest were not kept
        received: list[MediaEvent] = []

        async def drain() -> None:
            async for event in sub:
                received.append(event)

        with pytest.raises(SlowConsumer):
            await drain()
        assert len(received) == 5


async def _overflowed(subscriber: object) -> bool:
    return bool(getattr(subscriber, "overflowed", False))


async def _publish(bus: RedisEventBus, owner: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        event_id = await bus.publish(
            MediaEvent(MediaEventType.UPDATED, _media(owner, str(ULID())), datetime.now(UTC))
        )
        assert event_id is not None
        ids.append(event_id)
    return ids


async def test_history_is_cut_exactly_at_its_length_and_a_since_before_the_cut_expires(
    bus: RedisEventBus, settings: Settings
) -> None:
    short = RedisEventBus(bus._redis, prefix=settings.redis_prefix, stream_maxlen=3)
    ids = await _publish(short, "alice", 5)
    assert await bus._redis.xlen(short.stream_key("alice")) == 3
    # The last trimmed id is still a complete position: everything after it is kept.
    async with short.subscribe("alice", since=ids[1]) as sub:
        events = aiter(sub)
        replayed = [await asyncio.wait_for(anext(events), 5) for _ in range(3)]
    assert [event.event_id for event in replayed] == ids[2:]
    with pytest.raises(EventsExpired):
        async with short.subscribe("alice", since=ids[0]):
            pass
    assert short.local_subscribers == 0


async def test_events_older_than_the_age_limit_are_dropped_and_expire_their_position(
    bus: RedisEventBus, settings: Settings
) -> None:
    brief = RedisEventBus(bus._redis, prefix=settings.redis_prefix, stream_max_age_s=1)
    first = await _publish(brief, "alice", 1)

    async def aged() -> bool:  # on Redis's clock, which the trim reads
        seconds, micros = await bus._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000 > event_position(first[0])[0] + 1000

    await eventually(aged, timeout=10)
    await _publish(brief, "bob", 1)
    second = (await _publish(brief, "alice", 1))[0]
    entries = await stream_entries(bus._redis, brief.stream_key("alice"))
    assert [f"{event_epoch(second)}.{entry_id}" for entry_id, _ in entries] == [second]
    with pytest.raises(EventsExpired):
        async with brief.subscribe("alice", since=first[0]):
            pass


async def test_leaving_and_rejoining_at_once_keeps_replay_and_live_working(bus: RedisEventBus) -> None:
    since = (await _publish(bus, "alice", 1))[0]
    for _ in range(20):
        async with bus.subscribe("alice"):
            pass  # its SUBSCRIBE reply may still be unread when the next one is sent
        async with bus.subscribe("alice", since=since) as sub:
            later = await _publish(bus, "alice", 1)
            events = aiter(sub)
            received = await asyncio.wait_for(anext(events), 5)
            assert received.event_id == later[0]
            since = later[0]
