"""The event bus through a Redis outage, on a private redis-server (the shared one is never
stopped): subscribing while Redis is down fails at once with RESUBSCRIBE (never a 10 s wait),
the bus reports itself unable to serve, and subscribing works again by itself once Redis is
back, with no restart of the process. A Redis that lost its data is detected by the epoch: a
`since` from before answers SINCE_EXPIRED."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from infra.redis.bus import BusInterrupted, RedisEventBus
from services.core.events import EventsExpired, MediaEvent, MediaEventType, event_epoch
from services.core.media import MediaStatus
from tests.fakes import make_media
from tests.redis_process import RedisProcess

pytestmark = pytest.mark.integration


@pytest.fixture
async def bus(own_redis: RedisProcess) -> AsyncIterator[RedisEventBus]:
    redis = Redis.from_url(own_redis.url, socket_connect_timeout=1, socket_timeout=2)
    bus = RedisEventBus(redis, prefix="outage:")
    await bus.start()
    yield bus
    await bus.close()
    await redis.aclose()


async def _eventually(check: object, *, within_s: float = 15.0) -> None:
    """Poll `check` (an async callable that raises until it holds) until it passes."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            await check()  # type: ignore[operator]
            return
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_subscribing_during_an_outage_fails_fast_and_recovers_after_it(
    bus: RedisEventBus, own_redis: RedisProcess
) -> None:
    await bus.ping()
    own_redis.stop()

    async def unready() -> None:
        with pytest.raises((RedisError, OSError)):
            await bus.ping()

    await _eventually(unready)
    # Several users and the same user twice try during the outage: each is told to resubscribe.
    for user in ("alice", "alice", "bob"):
        started = asyncio.get_running_loop().time()
        with pytest.raises(BusInterrupted) as caught:
            async with bus.subscribe(user):
                pass
        assert caught.value.extensions["reason"] == "RESUBSCRIBE"
        assert asyncio.get_running_loop().time() - started < 5  # never the old 10 s wait
    assert bus.local_subscribers == 0

    own_redis.start()
    await _eventually(bus.ping)

    async def subscribe_and_receive() -> None:
        async with bus.subscribe("alice") as sub:
            media = make_media(b"x", owner_id="alice", status=MediaStatus.COMPLETED)
            event_id = await bus.publish(MediaEvent(MediaEventType.COMPLETED, media, datetime.now(UTC)))
            received = await asyncio.wait_for(anext(aiter(sub)), 5)
            assert received.event_id == event_id

    await _eventually(subscribe_and_receive)
    # The same user again, and twice at once: nothing left over from the outage stalls them.
    async with bus.subscribe("alice"), bus.subscribe("alice"), bus.subscribe("bob"):
        assert bus.local_subscribers == 3


async def test_a_since_from_before_redis_lost_its_data_expires(
    bus: RedisEventBus, own_redis: RedisProcess
) -> None:
    media = make_media(b"x", owner_id="alice", status=MediaStatus.PROCESSING)
    old = await bus.publish(MediaEvent(MediaEventType.PROCESSING, media, datetime.now(UTC)))
    assert old is not None
    # Still the same history: a resume from it replays nothing, and is not expired.
    async with bus.subscribe("alice", since=old) as sub:
        assert sub.backlog == []

    own_redis.wipe()  # all data lost, as a restart without persistence
    with pytest.raises(EventsExpired):
        async with bus.subscribe("alice", since=old):
            pass
    # Also after new events began a new history, and for a user who had none since.
    new = await bus.publish(MediaEvent(MediaEventType.UPDATED, media, datetime.now(UTC)))
    assert new is not None and event_epoch(new) != event_epoch(old)
    with pytest.raises(EventsExpired):
        async with bus.subscribe("alice", since=old):
            pass
    async with bus.subscribe("alice", since=new) as sub:
        assert sub.backlog == []
    # An id from before epochs existed cannot tell: SINCE_EXPIRED, the client refetches once.
    with pytest.raises(EventsExpired):
        async with bus.subscribe("alice", since=old.partition(".")[2]):
            pass


async def test_a_position_handed_out_before_any_event_resumes_in_the_same_history(bus: RedisEventBus) -> None:
    position = await bus.last_id("carol")
    media = make_media(b"y", owner_id="carol", status=MediaStatus.COMPLETED)
    event_id = await bus.publish(MediaEvent(MediaEventType.COMPLETED, media, datetime.now(UTC)))
    async with bus.subscribe("carol", since=position) as sub:
        assert [event.event_id for _, event in sub.backlog] == [event_id]
