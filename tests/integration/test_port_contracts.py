"""One contract per port, run against the in-memory fake (tests/fakes.py) and the real adapter
(DynamoDB, S3 and SQS in moto's server, a real Redis): the fakes the unit tests trust behave as
the adapters do. A fake that diverges fails here, beside the adapter it should imitate.

The real adapters of this module share one table, one bucket and one Redis prefix (made once,
in `world`); each test keeps to owners, media ids, keys and buckets of its own (`unique`)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from ulid import ULID

from infra.aws.clients import AwsClients, open_clients
from infra.aws.dynamo import DynamoMediaRepository
from infra.aws.dynamo_audit import DynamoAuditLog
from infra.aws.dynamo_engagement import DynamoEngagementStore
from infra.aws.dynamo_social import DynamoSocialStore
from infra.aws.idempotency import DynamoIdempotencyStore
from infra.aws.resources import ensure_resources
from infra.aws.s3 import S3BlobStore
from infra.redis.bus import RedisEventBus
from infra.redis.rate_limit import RedisRateLimiter
from infra.redis.snapshots import RedisSnapshotStore
from infra.settings import Settings
from services.core.errors import Conflict
from services.core.events import MediaEvent, MediaEventType
from services.core.media import MediaStatus, Visibility, utcnow
from services.core.ports import (
    AuditEntry,
    AuditLog,
    BlobStore,
    Bucket,
    EngagementStore,
    EventBus,
    FriendshipState,
    IdempotencyClaim,
    IdempotencyStore,
    ListFilter,
    MediaRepository,
    MediaStats,
    RateLimiter,
    SnapshotStore,
    SocialStore,
)
from tests.conftest import isolated_settings
from tests.fakes import (
    InMemoryAuditLog,
    InMemoryBlobStore,
    InMemoryEngagementStore,
    InMemoryEventBus,
    InMemoryIdempotencyStore,
    InMemoryMediaRepository,
    InMemoryRateLimiter,
    InMemorySnapshotStore,
    InMemorySocialStore,
    make_media,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

IMPLEMENTATIONS = ["fake", "real"]


@dataclasses.dataclass
class World:
    settings: Settings
    clients: AwsClients
    redis: Redis


@pytest.fixture(scope="module")
def world_settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_url)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(world_settings: Settings) -> AsyncIterator[World]:
    """One table, bucket and queue set, one Redis client: made once for every contract."""
    async with AsyncExitStack() as stack:
        clients = await open_clients(world_settings.aws, stack)
        await ensure_resources(clients, world_settings.aws)
        redis = Redis.from_url(world_settings.redis_url)
        stack.push_async_callback(redis.aclose)
        yield World(world_settings, clients, redis)


def unique(name: str) -> str:
    """A name no other test of the shared world uses."""
    return f"{name}-{str(ULID()).lower()}"


def contract(name: str, fake: Callable[[], object], real: Callable[[World], object]) -> Any:
    """The fixture `name`: once the fake, once the real adapter on the shared world."""

    @pytest_asyncio.fixture(name=name, params=IMPLEMENTATIONS, loop_scope="module")
    async def implementation(request: pytest.FixtureRequest, world: World) -> object:
        return fake() if request.param == "fake" else real(world)

    return implementation


def _table(adapter: Callable[[Any, str], object]) -> Callable[[World], object]:
    return lambda world: adapter(world.clients.dynamodb, world.settings.table)


repo = contract("repo", InMemoryMediaRepository, _table(DynamoMediaRepository))
audit = contract("audit", InMemoryAuditLog, _table(DynamoAuditLog))
engagement = contract("engagement", InMemoryEngagementStore, _table(DynamoEngagementStore))
idempotency = contract("idempotency", InMemoryIdempotencyStore, _table(DynamoIdempotencyStore))
social = contract("social", InMemorySocialStore, _table(DynamoSocialStore))
limiter = contract(
    "limiter", InMemoryRateLimiter, lambda w: RedisRateLimiter(w.redis, prefix=w.settings.redis_prefix)
)
snapshots = contract(
    "snapshots", InMemorySnapshotStore, lambda w: RedisSnapshotStore(w.redis, w.settings.redis_prefix)
)
blobs = contract("blobs", InMemoryBlobStore, lambda w: S3BlobStore(w.clients.s3, w.settings.bucket))


@pytest_asyncio.fixture(params=IMPLEMENTATIONS, loop_scope="module")
async def bus(request: pytest.FixtureRequest, world: World) -> AsyncIterator[EventBus]:
    if request.param == "fake":
        yield InMemoryEventBus()
        return
    real = RedisEventBus(world.redis, prefix=world.settings.redis_prefix)
    await real.start()
    yield real
    await real.close()


def media_of(owner: str, *, seconds_ago: int = 0, **changes: Any) -> Any:
    data = unique("bytes").encode()
    created = utcnow() - timedelta(seconds=seconds_ago)
    return dataclasses.replace(make_media(data, owner_id=owner, created_at=created), **changes)


# MediaRepository ----------------------------------------------------------------------------------


async def test_repository_creates_once_and_reads_back(repo: MediaRepository) -> None:
    media = media_of(unique("owner"), title="Dusk", tags=("beach",))
    await repo.create(media)
    assert await repo.get(media.id) == media
    with pytest.raises(Conflict):
        await repo.create(media)
    assert await repo.get(unique("absent")) is None
    assert await repo.get_many([media.id, unique("absent")]) == {media.id: media}


async def test_repository_saves_only_the_expected_version(repo: MediaRepository) -> None:
    media = media_of(unique("owner"))
    await repo.create(media)
    edited = media.edit(utcnow(), title="New")
    await repo.save(edited, expected_version=media.version, previous=media)
    assert await repo.get(media.id) == edited
    with pytest.raises(Conflict):  # a writer that read the old version loses
        await repo.save(media.edit(utcnow(), title="Late"), expected_version=media.version, previous=media)
    with pytest.raises(Conflict):  # a stale delete too
        await repo.delete(media)
    await repo.delete(edited)
    assert await repo.get(media.id) is None


async def test_repository_lists_an_owner_newest_first_a_page_at_a_time(repo: MediaRepository) -> None:
    owner = unique("owner")
    made = [media_of(owner, seconds_ago=10 - i, tags=("even",) if i % 2 == 0 else ()) for i in range(5)]
    for media in made:
        await repo.create(media)
    await repo.create(media_of(unique("someone-else")))
    newest_first = [media.id for media in reversed(made)]

    first = await repo.list_by_owner(owner, limit=2, after=None, filter=ListFilter())
    assert [m.id for m in first.items] == newest_first[:2] and first.has_more
    assert first.last_position == repo.position_of(first.items[-1])
    rest = await repo.list_by_owner(owner, limit=10, after=first.last_position, filter=ListFilter())
    assert [m.id for m in rest.items] == newest_first[2:] and not rest.has_more

    tagged = await repo.list_by_owner(owner, limit=10, after=None, filter=ListFilter(tag="even"))
    assert [m.id for m in tagged.items] == [made[4].id, made[2].id, made[0].id]
    pending = await repo.list_by_owner(
        owner, limit=10, after=None, filter=ListFilter(status=MediaStatus.COMPLETED)
    )
    assert pending.items == [] and not pending.has_more


async def test_repository_reads_the_hashes_of_an_owners_completed_media(repo: MediaRepository) -> None:
    owner = unique("owner")
    done = []
    for i, phash in enumerate(["00000000000000ff", None, "0f0f0f0f0f0f0f0f", "ffffffffffffffff"]):
        media = media_of(owner, seconds_ago=10 - i)
        await repo.create(media)
        started = media.transition(MediaStatus.PROCESSING, utcnow())
        await repo.save(started, expected_version=media.version, previous=media)
        completed = started.transition(MediaStatus.COMPLETED, utcnow(), phash=phash)
        await repo.save(completed, expected_version=started.version, previous=started)
        done.append(completed)
    await repo.create(media_of(owner))  # PENDING: not compared
    other = media_of(unique("someone-else"))
    await repo.create(other)

    # Newest first; a media without a hash (a video without a poster) has nothing to compare.
    assert await repo.completed_hashes(owner, limit=10) == [
        (done[3].id, "ffffffffffffffff"),
        (done[2].id, "0f0f0f0f0f0f0f0f"),
        (done[0].id, "00000000000000ff"),
    ]
    assert [i for i, _ in await repo.completed_hashes(owner, limit=2)] == [done[3].id, done[2].id]
    assert await repo.completed_hashes(other.owner_id, limit=10) == []


async def test_repository_counts_and_sums_what_an_owner_holds(repo: MediaRepository) -> None:
    owner = unique("owner")
    now = utcnow()
    held = media_of(owner)
    expired = media_of(owner, expires_at=now - timedelta(seconds=1))
    await repo.create(held)
    await repo.create(expired)
    completed = held.transition(MediaStatus.COMPLETED, now)
    await repo.save(completed, expected_version=held.version, previous=held)

    assert await repo.count_by_status(owner) == {MediaStatus.COMPLETED: 1, MediaStatus.PENDING: 1}
    usage = await repo.owner_usage(owner, MediaStatus.COMPLETED, now=now)
    assert (usage.count, usage.bytes) == (1, held.size)
    pending = await repo.owner_usage(owner, MediaStatus.PENDING, now=now)
    assert (pending.count, pending.bytes) == (0, 0)  # the expired upload no longer counts
    assert await repo.find_completed_by_sha256(owner, held.sha256) == completed
    assert await repo.find_completed_by_sha256(owner, expired.sha256) is None


async def test_repository_lists_a_tag_across_owners(repo: MediaRepository) -> None:
    tag = unique("tag")
    older = media_of(unique("owner"), seconds_ago=5, tags=(tag,))
    newer = media_of(unique("owner"), seconds_ago=1, tags=(tag,), visibility=Visibility.PUBLIC)
    for media in (older, newer, media_of(unique("owner"))):
        await repo.create(media)
    page = await repo.list_by_tag(tag, limit=10, after=None)
    assert [m.id for m in page.items] == [newer.id, older.id] and not page.has_more


async def test_repository_lists_completed_media_by_visibility_newest_first(repo: MediaRepository) -> None:
    owner = unique("owner")
    made = {
        name: media_of(owner, seconds_ago=age, status=MediaStatus.COMPLETED, visibility=visibility)
        for name, age, visibility in (
            ("old", 30, Visibility.PUBLIC),
            ("new", 10, Visibility.PUBLIC),
            ("private", 20, Visibility.PRIVATE),
        )
    }
    made["pending"] = media_of(owner, visibility=Visibility.PUBLIC)
    for media in made.values():
        await repo.create(media)
    page = await repo.list_completed(Visibility.PUBLIC, limit=1000, after=None)
    mine = [m.id for m in page.items if m.owner_id == owner]  # the world is shared: others' too
    assert mine == [made["new"].id, made["old"].id]
    private = await repo.list_completed(Visibility.PRIVATE, limit=1000, after=None)
    assert [m.id for m in private.items if m.owner_id == owner] == [made["private"].id]


async def test_repository_gives_deleted_media_in_purge_order(repo: MediaRepository) -> None:
    owner = unique("owner")
    now = utcnow()
    due = {}
    for name, days in (("later", 3), ("sooner", 1), ("latest", 5)):
        media = media_of(owner, status=MediaStatus.COMPLETED)
        await repo.create(media)
        deleted = media.soft_delete(now, owner, now - timedelta(days=100 - days))
        await repo.save(deleted, expected_version=media.version, previous=media)
        due[name] = deleted
    oldest = await repo.oldest_with_status(MediaStatus.DELETED, limit=1000)
    assert [m.id for m in oldest if m.owner_id == owner] == [due[n].id for n in ("sooner", "later", "latest")]
    assert await repo.count_by_status(owner) == {MediaStatus.DELETED: 3}


async def test_repository_scan_pages_through_every_record_once(repo: MediaRepository) -> None:
    owner = unique("owner")
    made = [media_of(owner) for _ in range(5)]
    for media in made:
        await repo.create(media)
    seen: list[str] = []
    after: str | None = None
    while True:
        page = await repo.scan(limit=3, after=after)
        seen += [m.id for m in page.items]
        if not page.has_more:
            break
        after = page.last_position
    assert sorted(i for i in seen if i in {m.id for m in made}) == sorted(m.id for m in made)
    assert len(seen) == len(set(seen))


# AuditLog -------------------------------------------------------------------------------------------


async def test_audit_log_keeps_entries_in_id_order_once_each(audit: AuditLog) -> None:
    media_id = unique("media")
    entries = [
        AuditEntry(media_id, "alice", str(ULID()), "alice", action, utcnow(), {"title": ("", "x")})
        for action in ("CREATED", "EDITED", "DELETED")
    ]
    for entry in reversed(entries):
        await audit.record(entry)
    await audit.record(entries[0])  # the same entry again changes nothing
    first = await audit.entries(media_id, limit=2, after=None)
    assert [e.action for e in first.entries] == ["CREATED", "EDITED"] and first.has_more
    assert first.entries[1].changes == {"title": ("", "x")}
    rest = await audit.entries(media_id, limit=2, after=first.entries[-1].entry_id)
    assert [e.action for e in rest.entries] == ["DELETED"] and not rest.has_more
    assert (await audit.entries(unique("media"), limit=5, after=None)).entries == []


# EngagementStore ------------------------------------------------------------------------------------


async def test_engagement_counts_each_like_once(engagement: EngagementStore) -> None:
    one, two = unique("media"), unique("media")
    assert await engagement.like(one, "alice") is True
    assert await engagement.like(one, "alice") is False
    assert await engagement.like(one, "bob") is True
    assert await engagement.liked("alice", [one, two]) == {one}
    await engagement.add_views({one: 3, two: 1})
    await engagement.add_views({one: 2})
    assert await engagement.stats([one, two]) == {
        one: MediaStats(like_count=2, view_count=5),
        two: MediaStats(like_count=0, view_count=1),
    }
    assert await engagement.unlike(one, "bob") is True
    assert await engagement.unlike(one, "bob") is False
    assert (await engagement.stats([one]))[one].like_count == 1


async def test_engagement_forgets_a_user_and_a_media(engagement: EngagementStore) -> None:
    one, two = unique("media"), unique("media")
    user = unique("user")
    await engagement.like(one, user)
    await engagement.like(two, user)
    await engagement.like(two, "bob")
    assert await engagement.forget_user(user) == 2
    assert await engagement.liked(user, [one, two]) == set()
    assert (await engagement.stats([two]))[two].like_count == 1
    await engagement.add_views({two: 4})
    await engagement.forget(two)
    await engagement.forget(two)  # idempotent
    assert (await engagement.stats([two])).get(two, MediaStats()) == MediaStats()


# IdempotencyStore -----------------------------------------------------------------------------------


async def test_an_idempotency_key_is_held_by_its_first_claim_until_released(
    idempotency: IdempotencyStore,
) -> None:
    owner, key = unique("owner"), unique("key")
    first, second = IdempotencyClaim("m1", "f1"), IdempotencyClaim("m2", "f2")
    assert await idempotency.claim(owner, key, first, ttl_s=60) is None
    assert await idempotency.claim(owner, key, second, ttl_s=60) == first
    assert await idempotency.claim(unique("owner"), key, second, ttl_s=60) is None  # per owner
    await idempotency.release(owner, key, second)  # not the holder: nothing happens
    assert await idempotency.claim(owner, key, second, ttl_s=60) == first
    await idempotency.release(owner, key, first)
    assert await idempotency.claim(owner, key, second, ttl_s=60) is None


# RateLimiter ----------------------------------------------------------------------------------------


async def test_a_bucket_grants_its_burst_then_says_how_long_to_wait(limiter: RateLimiter) -> None:
    bucket = unique("user")
    assert [await limiter.acquire(bucket, rate_per_s=0.01, burst=3) for _ in range(3)] == [0.0] * 3
    wait = await limiter.acquire(bucket, rate_per_s=0.01, burst=3)
    assert 90 < wait <= 100  # one token at 0.01/s
    assert await limiter.acquire(unique("user"), rate_per_s=0.01, burst=3) == 0.0  # buckets are separate
    assert await limiter.acquire(unique("user"), rate_per_s=0.01, burst=5, cost=5) == 0.0
    assert await limiter.acquire(bucket, rate_per_s=0.01, burst=3, cost=2) > wait


async def test_buckets_charged_together_are_each_charged_whatever_the_others_answer(
    limiter: RateLimiter,
) -> None:
    user, address = Bucket(unique("user"), 0.01, 2), Bucket(unique("ip"), 0.01, 1)
    assert await limiter.acquire_all([user, address]) == [0.0, 0.0]
    first, second = await limiter.acquire_all([user, address])
    assert first == 0.0 and 90 < second <= 100  # the address is empty, the user still paid
    first, second = await limiter.acquire_all([user, address], cost=1)
    assert 90 < first <= 100 and 90 < second <= 100  # a refusal takes nothing
    assert await limiter.acquire_all([Bucket(unique("user"), 0.01, 5)], cost=5) == [0.0]


# SnapshotStore --------------------------------------------------------------------------------------


async def test_a_snapshot_reads_back_in_order(snapshots: SnapshotStore) -> None:
    ids = [unique("media") for _ in range(3)]
    snapshot = await snapshots.save(ids, ttl_s=60)
    assert await snapshots.load(snapshot) == ids
    other = await snapshots.save([], ttl_s=60)
    assert other != snapshot
    assert await snapshots.load(other) == []


# SocialStore ----------------------------------------------------------------------------------------


async def test_friendship_requests_accepts_and_ends(social: SocialStore) -> None:
    alice, bob, carol = unique("a"), unique("b"), unique("c")
    for user in (alice, bob):
        await social.touch_user(user)
    assert await social.user_exists(alice) and not await social.user_exists(carol)
    await social.request(alice, bob)
    assert (await social.state(alice, bob), await social.state(bob, alice)) == (
        FriendshipState.REQUESTED,
        FriendshipState.INCOMING,
    )
    assert await social.list_related(bob, FriendshipState.INCOMING, limit=5, after=None) == ([alice], False)
    await social.befriend(bob, alice)
    assert await social.state(alice, bob) is FriendshipState.FRIENDS
    await social.befriend(alice, carol)
    friends, more = await social.list_related(alice, FriendshipState.FRIENDS, limit=1, after=None)
    assert friends == [min(bob, carol)] and more
    assert await social.list_related(alice, FriendshipState.FRIENDS, limit=1, after=friends[0]) == (
        [max(bob, carol)],
        False,
    )
    relations = await social.relations(alice, {bob, carol, unique("d")})
    assert relations.friends == {bob, carol} and relations.blocked == frozenset()
    await social.unfriend(bob, alice)
    assert await social.state(alice, bob) is FriendshipState.NONE


async def test_a_block_ends_everything_and_outlives_unfriending(social: SocialStore) -> None:
    alice, bob = unique("a"), unique("b")
    await social.befriend(alice, bob)
    await social.block(bob, alice)
    assert await social.state(alice, bob) is FriendshipState.BLOCKED
    assert await social.state(bob, alice) is FriendshipState.BLOCKED
    assert (await social.relations(alice, {bob})).blocked == {bob}
    assert (await social.relations(alice, {bob})).friends == frozenset()
    await social.unfriend(alice, bob)  # does not lift the block
    assert await social.state(alice, bob) is FriendshipState.BLOCKED
    assert await social.list_related(alice, FriendshipState.FRIENDS, limit=5, after=None) == ([], False)


# BlobStore ------------------------------------------------------------------------------------------


async def test_blobs_write_read_copy_list_and_delete(blobs: BlobStore) -> None:
    prefix = unique("exports") + "/"
    data = b"x" * 3000
    await blobs.write(f"{prefix}a.json", data, content_type="application/json")
    info = await blobs.head(f"{prefix}a.json")
    assert info is not None and (info.size, info.content_type) == (3000, "application/json")
    assert info.etag == '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
    stream = await blobs.open(f"{prefix}a.json")
    assert stream is not None
    try:
        assert b"".join([chunk async for chunk in stream.chunks]) == data
    finally:
        await stream.close()
    assert await blobs.open(f"{prefix}absent") is None and await blobs.head(f"{prefix}absent") is None

    await blobs.copy(f"{prefix}a.json", f"{prefix}b.json")
    assert [key async for key in blobs.keys(prefix)] == [f"{prefix}a.json", f"{prefix}b.json"]
    await blobs.delete(f"{prefix}a.json")
    await blobs.delete(f"{prefix}a.json")  # absent: no error
    assert [key async for key in blobs.keys(prefix)] == [f"{prefix}b.json"]
    assert await blobs.delete_all_versions(prefix) >= 1
    assert await blobs.delete_all_versions(prefix) == 0
    assert [key async for key in blobs.keys(prefix)] == []


# EventBus -------------------------------------------------------------------------------------------


async def test_the_bus_publishes_a_change_once_and_replays_after_a_position(bus: EventBus) -> None:
    owner = unique("owner")
    events = [
        MediaEvent(MediaEventType.UPDATED, media_of(owner, status=MediaStatus.COMPLETED), utcnow())
        for _ in range(3)
    ]
    first = await bus.publish(events[0])
    assert first is not None
    assert await bus.publish(events[0]) is None  # the same change: not announced again
    assert await bus.published_id(events[0]) == first
    assert await bus.published_id(events[1]) is None
    later = [await bus.publish(event) for event in events[1:]]
    async with bus.subscribe(owner, since=first) as subscription:
        replayed = aiter(subscription)
        got = [await anext(replayed), await anext(replayed)]
    assert [event.event_id for event in got] == later
    assert [event.media.id for event in got] == [event.media.id for event in events[1:]]
