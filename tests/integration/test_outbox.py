"""The transactional outbox against moto and a private redis-server (stopped here; the shared
Redis never is): a change committed while Redis is down is announced once Redis is back, once;
an idempotent retry publishes what its first request could not; a writer that died between its
commit and its publish is covered by the relay within seconds."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from infra.aws.resources import Resources
from infra.roots.runtime import Runtime, open_runtime
from infra.settings import Settings
from services.core.auth import Principal
from services.core.events import MediaEvent, MediaEventType
from services.core.media import MediaStatus, utcnow
from services.ingest.uploads import UploadRequest
from tests.conftest import isolated_settings
from tests.redis_process import RedisProcess
from tests.servers import eventually
from tests.streams import stream_events

pytestmark = pytest.mark.integration
ALICE = Principal(user_id="alice")


@pytest.fixture
def settings(moto_endpoint: str, own_redis: RedisProcess) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, own_redis.url, outbox_relay_interval_s=0.5)


@pytest.fixture
async def runtime(settings: Settings, resources: Resources) -> AsyncIterator[Runtime]:
    async with open_runtime(settings) as runtime:
        yield runtime


def _request(key: str | None = None, data: bytes = b"a") -> UploadRequest:
    return UploadRequest(
        filename="a.jpg",
        content_type="image/jpeg",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        idempotency_key=key,
    )


async def _stream(runtime: Runtime, user: str) -> list[tuple[str, str]]:
    """(type, media id) of every event in the user's replay stream, oldest first."""
    async with Redis.from_url(runtime.settings.redis_url) as redis:
        events = await stream_events(redis, runtime.bus.stream_key(user))
    return [(event.type.value, event.media.id) for event in events]


async def _outbox_empty(runtime: Runtime) -> bool:
    await runtime.outbox.flush_deletes()
    for shard in range(4):
        response = await runtime.clients.dynamodb.query(
            TableName=runtime.settings.table,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues={":pk": {"S": f"OUTBOX#{shard}"}},
            ConsistentRead=True,
        )
        if response["Items"]:
            return False
    return True


async def test_a_change_committed_while_redis_is_down_is_announced_once_when_it_is_back(
    runtime: Runtime, own_redis: RedisProcess
) -> None:
    own_redis.stop()
    ticket = await runtime.uploads.create_upload(ALICE, _request("outage-create-0001"))  # no error
    own_redis.start()

    async def announced() -> bool:
        return await _stream(runtime, "alice") == [("CREATED", ticket.media.id)]

    await eventually(announced, timeout=20)
    await eventually(lambda: _outbox_empty(runtime))
    # The retry with the same key: the same media, and still one event.
    again = await runtime.uploads.create_upload(ALICE, _request("outage-create-0001"))
    assert again.replayed and again.media.id == ticket.media.id
    assert await _stream(runtime, "alice") == [("CREATED", ticket.media.id)]
    assert (await runtime.repo.count_by_status("alice")).get(MediaStatus.PENDING) == 1


async def test_an_idempotent_retry_publishes_what_its_first_request_could_not(
    resources: Resources, own_redis: RedisProcess, settings: Settings
) -> None:
    # No relay runs: only the retry can publish.
    async with open_runtime(settings, listen=False, relay=False) as runtime:
        own_redis.stop()
        first = await runtime.uploads.create_upload(ALICE, _request("retry-publishes-01"))
        own_redis.start()
        assert await _stream(runtime, "alice") == []
        retried = await runtime.uploads.create_upload(ALICE, _request("retry-publishes-01"))
        assert retried.media.id == first.media.id
        assert await _stream(runtime, "alice") == [("CREATED", first.media.id)]


async def test_a_writer_that_died_after_its_commit_is_covered_by_the_relay(runtime: Runtime) -> None:
    ticket = await runtime.uploads.create_upload(ALICE, _request(data=b"b"))
    media = ticket.media
    async with runtime.bus.subscribe("alice") as subscription:
        # What a worker does before it is killed: the write, with its event in the outbox; the
        # publish never happens, and the S3 message would stay invisible for its timeout.
        processing = media.transition(MediaStatus.PROCESSING, utcnow())
        await runtime.repo.save(
            processing,
            expected_version=media.version,
            previous=media,
            events=(MediaEvent(MediaEventType.PROCESSING, processing, processing.updated_at),),
        )
        events = aiter(subscription)
        received = await anext(events)
        assert (received.type, received.media.id) == (MediaEventType.PROCESSING, media.id)
    await eventually(lambda: _outbox_empty(runtime))
