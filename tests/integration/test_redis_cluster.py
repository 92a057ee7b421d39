"""Every Redis adapter on a real Redis Cluster of three masters (tests/redis_cluster.py): the keys
of each script share a slot (a CROSSSLOT error would fail these), and the event bus's sharded
pub/sub reaches subscribers whose channels live on different nodes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from ulid import ULID

from infra.redis.bus import BusInterrupted, RedisEventBus
from infra.redis.client import is_cluster, open_redis
from infra.redis.delivery import RedisUrlCache, RedisViewRecorder
from infra.redis.keys import RedisKeys
from infra.redis.rate_limit import RedisRateLimiter
from infra.redis.sessions import RedisRefreshTokenStore
from infra.redis.snapshots import RedisSnapshotStore
from infra.roots.runtime import Runtime
from infra.settings import RedisConfig, Settings
from services.core.auth import Principal
from services.core.errors import Unauthenticated
from services.core.events import EventsExpired, MediaEvent, MediaEventType
from services.core.media import MediaStatus, Visibility
from services.core.ports import Bucket, CachedUrl
from tests.conftest import isolated_settings
from tests.fakes import make_media
from tests.redis_cluster import private_redis_cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(moto_endpoint: str, redis_cluster_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_cluster_url, redis_cluster=True)


def _nodes_of(redis: RedisCluster, keys: list[str]) -> set[str]:
    nodes = [redis.get_node_from_key(key) for key in keys]
    return {node.name for node in nodes if node is not None}


def _users_on_every_node(runtime: Runtime, count: int = 12) -> list[str]:
    keys = RedisKeys(runtime.settings.redis_prefix)
    users = [f"user{n}" for n in range(count)]
    assert isinstance(runtime.redis, RedisCluster)
    assert len(_nodes_of(runtime.redis, [keys.events_channel(user) for user in users])) == 3
    return users


async def test_the_runtime_opens_the_cluster_client(runtime: Runtime) -> None:
    assert is_cluster(runtime.redis)
    assert isinstance(runtime.redis, RedisCluster)
    assert len(runtime.redis.get_primaries()) == 3
    await runtime.bus.ping()


async def test_the_bus_delivers_across_nodes_replays_and_expires(runtime: Runtime) -> None:
    bus = runtime.bus
    users = _users_on_every_node(runtime)
    async with contextlib.AsyncExitStack() as stack:
        subscribers = {user: await stack.enter_async_context(bus.subscribe(user)) for user in users}
        published: dict[str, str] = {}
        for user in users:
            media = make_media(b"x", owner_id=user, status=MediaStatus.COMPLETED, media_id=str(ULID()))
            event_id = await bus.publish(MediaEvent(MediaEventType.COMPLETED, media, datetime.now(UTC)))
            assert event_id is not None
            published[user] = event_id
        for user, subscriber in subscribers.items():
            received = await asyncio.wait_for(anext(aiter(subscriber)), 10)
            assert (received.owner_id, received.event_id) == (user, published[user])
            assert subscriber.queue.empty()
    # Replay from the stream in the user's slot, then a since before a trim expires.
    short = RedisEventBus(runtime.redis, prefix=runtime.settings.redis_prefix, stream_maxlen=2)
    ids = []
    for _ in range(4):
        media = make_media(b"x", owner_id="user0", status=MediaStatus.PENDING, media_id=str(ULID()))
        event_id = await short.publish(MediaEvent(MediaEventType.CREATED, media, datetime.now(UTC)))
        assert event_id is not None
        ids.append(event_id)
    async with short.subscribe("user0", since=ids[1]) as subscriber:
        events = aiter(subscriber)
        replayed = [await asyncio.wait_for(anext(events), 10) for _ in range(2)]
    assert [event.event_id for event in replayed] == ids[2:]
    with pytest.raises(EventsExpired):
        async with short.subscribe("user0", since=ids[0]):
            pass
    # The same change twice: announced once, its marker in the user's slot.
    assert await short.publish(MediaEvent(MediaEventType.CREATED, media, datetime.now(UTC))) is None
    assert await short.published_id(MediaEvent(MediaEventType.CREATED, media, datetime.now(UTC))) == ids[3]


async def test_the_page_cache_serves_and_invalidates_on_the_cluster(runtime: Runtime) -> None:
    first = make_media(b"x", owner_id="alice", status=MediaStatus.COMPLETED, visibility=Visibility.PUBLIC)
    await runtime.repo.create(first)
    page = await runtime.repo.list_completed(Visibility.PUBLIC, limit=10, after=None)
    assert [m.id for m in page.items] == [first.id]
    second = make_media(b"y", owner_id="bob", status=MediaStatus.COMPLETED, visibility=Visibility.PUBLIC)
    await runtime.repo.create(second)  # invalidates the scopes of both owners and the public one
    page = await runtime.repo.list_completed(Visibility.PUBLIC, limit=10, after=None)
    assert {m.id for m in page.items} == {first.id, second.id}


async def test_rate_limits_url_cache_views_and_snapshots_on_the_cluster(runtime: Runtime) -> None:
    redis, prefix = runtime.redis, runtime.settings.redis_prefix
    limiter = RedisRateLimiter(redis, prefix=prefix)
    for bucket in [f"user:u{n}" for n in range(10)]:
        assert [await limiter.acquire(bucket, rate_per_s=1, burst=2) for _ in range(2)] == [0, 0]
        assert await limiter.acquire(bucket, rate_per_s=1, burst=2) > 0
    # A user's and an address's buckets sit in different slots: charged together all the same.
    pairs = [[Bucket(f"user:a{n}", 1, 2), Bucket(f"ip:10.0.0.{n}", 1, 1)] for n in range(10)]
    for pair in pairs:
        assert await limiter.acquire_all(pair) == [0, 0]
        second = await limiter.acquire_all(pair)
        assert second[0] == 0 and second[1] > 0

    urls = RedisUrlCache(redis, prefix)
    url = CachedUrl("https://cdn.example/x.jpg", datetime.now(UTC) + timedelta(minutes=5))
    owners = [f"owner{n}" for n in range(10)]  # URL keys on every node, in one pipeline
    await urls.put_many([(owner, "derived/x.jpg", url) for owner in owners])
    assert await urls.get_many([(owner, "derived/x.jpg") for owner in owners]) == [url] * 10
    await urls.forget_owner("owner0")
    assert await urls.get_many([("owner0", "derived/x.jpg"), ("owner1", "derived/x.jpg")]) == [None, url]

    views = RedisViewRecorder(redis, prefix, log_length=10)
    media_ids = [f"01MEDIA{n}" for n in range(40)]  # every view bucket, on every node
    now = datetime.now(UTC)
    for media_id in media_ids:
        assert await views.record(media_id, "bob", now, window_s=60)
        assert not await views.record(media_id, "bob", now, window_s=60)  # deduplicated
        assert await views.record(media_id, "carol", now, window_s=60)
    assert await views.pending(media_ids) == dict.fromkeys(media_ids, 2)
    assert await views.take_pending() == dict.fromkeys(media_ids, 2)
    assert await views.take_pending() == {}
    log, more = await views.log(media_ids[0], offset=0, limit=5)
    assert [viewer for viewer, _ in log] == ["carol", "bob"] and not more

    snapshots = RedisSnapshotStore(redis, prefix)
    snapshot = await snapshots.save(media_ids[:3], ttl_s=60)
    assert await snapshots.load(snapshot) == media_ids[:3]


async def test_refresh_token_families_rotate_and_revoke_on_the_cluster(runtime: Runtime) -> None:
    store = RedisRefreshTokenStore(runtime.redis, prefix=runtime.settings.redis_prefix, ttl_s=600)
    keys = RedisKeys(runtime.settings.redis_prefix)
    alice = Principal(user_id="alice", roles=frozenset({"admin"}))
    families = [f"family{n}" for n in range(12)]
    assert isinstance(runtime.redis, RedisCluster)
    assert len(_nodes_of(runtime.redis, [keys.session_family(f) for f in families])) == 3
    for family in families:
        await store.open(family, f"{family}-t0", alice)
        assert await store.rotate(f"{family}-t0", f"{family}-t1") == alice
        assert await store.rotate(f"{family}-t1", f"{family}-t2") == alice
    # Reuse of a spent token revokes the whole family: the live token stops working too.
    with pytest.raises(Unauthenticated, match="reused"):
        await store.rotate("family0-t1", "family0-x")
    with pytest.raises(Unauthenticated):
        await store.rotate("family0-t2", "family0-y")
    # Sign-out ends the family; an unknown token is refused.
    assert await store.revoke("family1-t2")
    with pytest.raises(Unauthenticated):
        await store.rotate("family1-t2", "family1-z")
    assert not await store.revoke("nobody")
    with pytest.raises(Unauthenticated):
        await store.rotate("nobody", "nobody-1")
    # The other families are untouched.
    assert await store.rotate("family2-t2", "family2-t3") == alice
    assert key_slot(keys.session_family("family2").encode()) != key_slot(
        keys.session_family("family3").encode()
    )


async def test_a_node_restart_ends_only_its_users_subscriptions_and_they_resume(
    moto_endpoint: str,
) -> None:
    """One master stops and comes back: subscribers of users on the other masters keep getting
    live events throughout; those of the stopped master's users are told RESUBSCRIBE once it is
    back (redis-py reconnects and resubscribes without a failed read, so the bus must notice), and
    resume from `since` with nothing missed."""
    with private_redis_cluster(persistent=True) as cluster:  # its own: this test stops a node
        redis = open_redis(RedisConfig(url=cluster.url, prefix="mgtest:restart:", cluster=True))
        assert isinstance(redis, RedisCluster)
        bus = RedisEventBus(redis, prefix="mgtest:restart:")
        keys = RedisKeys("mgtest:restart:")
        await bus.start()
        try:
            await redis.initialize()

            def port_of(key: str) -> int:
                node = redis.get_node_from_key(key)
                assert node is not None
                return int(node.port)

            user_on: dict[int, str] = {}
            for n in range(100):
                user_on.setdefault(port_of(keys.events_channel(f"user{n}")), f"user{n}")
            assert len(user_on) == 3
            victim = next(port for port in user_on if port != port_of(keys.bus_control()))
            stopped_user = user_on[victim]
            others = [user for port, user in user_on.items() if port != victim]

            async def publish(user: str) -> str:
                media = make_media(b"x", owner_id=user, status=MediaStatus.PENDING, media_id=str(ULID()))
                event_id = await bus.publish(MediaEvent(MediaEventType.UPDATED, media, datetime.now(UTC)))
                assert event_id is not None
                return event_id

            async with contextlib.AsyncExitStack() as stack:
                subscribers = {
                    user: await stack.enter_async_context(bus.subscribe(user)) for user in user_on.values()
                }
                last = {user: await publish(user) for user in user_on.values()}
                for user, subscriber in subscribers.items():
                    assert (await asyncio.wait_for(anext(aiter(subscriber)), 10)).event_id == last[user]

                cluster.stop_node(victim)
                for user in others:  # the other masters serve on
                    event_id = await publish(user)
                    assert (await asyncio.wait_for(anext(aiter(subscribers[user])), 10)).event_id == event_id
                cluster.start_node(victim)
                cluster.wait_ok()

                with pytest.raises(BusInterrupted) as interrupted:
                    await asyncio.wait_for(anext(aiter(subscribers[stopped_user])), 30)
                assert interrupted.value.extensions["reason"] == "RESUBSCRIBE"
                for user in others:  # not interrupted: the next live event simply arrives
                    event_id = await publish(user)
                    assert (await asyncio.wait_for(anext(aiter(subscribers[user])), 10)).event_id == event_id

            # The client resumes from the last event it got: what was published since, once.
            after = await publish(stopped_user)
            async with bus.subscribe(stopped_user, since=last[stopped_user]) as resumed:
                assert (await asyncio.wait_for(anext(aiter(resumed)), 10)).event_id == after
                newest = await publish(stopped_user)
                assert (await asyncio.wait_for(anext(aiter(resumed)), 10)).event_id == newest
        finally:
            await bus.close()
            await redis.aclose()
