"""Two regions on one moto server (moto keeps resources per region), each with its own bucket,
queue, Redis prefix, API and worker, sharing the table name as a global table does.

moto accepts replica settings but never replicates, so `Replicator` copies what AWS would:
table items (global tables: whole items, last writer wins) and objects (CRR: same key, same
type and metadata; the copy raises ObjectCreated in the destination bucket, which notifies that
region's queue). docs/multi-region.md describes the design these tests hold the runtime to."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from infra.aws.clients import AwsClients, open_clients
from infra.aws.regions import ReplicaAwareBlobStore
from infra.aws.resources import ensure_resources
from infra.aws.s3 import S3BlobStore
from infra.aws.sqs_worker import SqsWorker
from infra.identity.jwt import issue_dev_token
from infra.roots.runtime import Runtime, open_runtime
from infra.settings import Settings
from tests.client import WsClient, create_upload, error_codes, gql, put_upload
from tests.conftest import make_settings
from tests.media_files import jpeg_bytes
from tests.servers import listening, serving

HOME, AWAY = "us-east-1", "eu-west-1"
MEDIA = "query($id: ID!) { media(id: $id) { id mediaId status url title } }"
EVENTS = "subscription { mediaEvents { type media { mediaId status url } } }"
UPDATE = "mutation($id: ID!, $title: String) { updateMedia(id: $id, input: {title: $title}) { title } }"


@dataclass
class Region:
    settings: Settings
    clients: AwsClients
    queue_url: str
    runtime: Runtime
    worker: SqsWorker
    api: str

    def token(self, user: str = "alice") -> str:
        return issue_dev_token(self.settings.tokens, user)


class Replicator:
    """Does, on demand, what DynamoDB global tables and S3 CRR do on their own."""

    def __init__(self, a: Region, b: Region) -> None:
        self._regions = {a.settings.aws_region: a, b.settings.aws_region: b}

    async def table(self, source: str, destination: str) -> int:
        """Every item of `source`'s replica written whole into `destination`'s."""
        src, dst = self._regions[source], self._regions[destination]
        copied = 0
        paginator = src.clients.dynamodb.get_paginator("scan")
        async for page in paginator.paginate(TableName=src.settings.table, ConsistentRead=True):
            for item in page.get("Items", []):
                await dst.clients.dynamodb.put_item(TableName=dst.settings.table, Item=item)
                copied += 1
        return copied

    async def item(self, source: str, destination: str, media_id: str) -> None:
        """One media's items only: the later writer's version landing in the other region."""
        src, dst = self._regions[source], self._regions[destination]
        paginator = src.clients.dynamodb.get_paginator("scan")
        async for page in paginator.paginate(TableName=src.settings.table, ConsistentRead=True):
            for item in page.get("Items", []):
                if media_id in item["pk"]["S"]:
                    await dst.clients.dynamodb.put_item(TableName=dst.settings.table, Item=item)

    async def objects(self, source: str, destination: str) -> list[str]:
        """Objects of `source`'s bucket missing from `destination`'s, copied with the same key."""
        src, dst = self._regions[source], self._regions[destination]
        copied = []
        paginator = src.clients.s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=src.settings.bucket):
            for entry in page.get("Contents", []):
                key = entry["Key"]
                existing = await dst.clients.s3.list_objects_v2(Bucket=dst.settings.bucket, Prefix=key)
                if any(entry["Key"] == key for entry in existing.get("Contents", [])):
                    continue
                got = await src.clients.s3.get_object(Bucket=src.settings.bucket, Key=key)
                async with got["Body"] as body:
                    data = await body.read()
                await dst.clients.s3.put_object(
                    Bucket=dst.settings.bucket,
                    Key=key,
                    Body=data,
                    ContentType=got.get("ContentType", "binary/octet-stream"),
                    Metadata=got.get("Metadata", {}),
                )
                copied.append(key)
        return copied


@contextlib.asynccontextmanager
async def region(settings: Settings) -> AsyncIterator[Region]:
    async with AsyncExitStack() as stack:
        clients = await open_clients(settings.aws, stack)
        resources = await ensure_resources(clients, settings.aws)
        await clients.sqs.purge_queue(QueueUrl=resources.queue_url)  # the s3:TestEvent
        runtime = await stack.enter_async_context(open_runtime(settings, listen=False))
        worker = SqsWorker(
            runtime.clients.sqs, resources.queue_url, runtime.processing, wait_s=1, retry_base_s=0
        )
        api = await stack.enter_async_context(serving(settings))
        yield Region(settings, clients, resources.queue_url, runtime, worker, api)


@dataclass
class World:
    home: Region
    away: Region
    replicate: Replicator


@pytest.fixture
async def world(moto_endpoint: str, redis_url: str) -> AsyncIterator[World]:
    base = make_settings(moto_endpoint, redis_url)
    names = {"table": base.table, "queue": base.queue, "dlq": base.dlq}
    common: dict[str, Any] = {"home_region": HOME, "replica_regions": (AWAY,), "max_receive_count": 3}
    away_bucket = f"{base.bucket}-eu"
    home_settings = make_settings(
        moto_endpoint,
        redis_url,
        **names,
        **common,
        aws_region=HOME,
        bucket=base.bucket,
        region_buckets={AWAY: away_bucket},
        redis_prefix=base.redis_prefix,
    )
    away_settings = make_settings(
        moto_endpoint,
        redis_url,
        **names,
        **common,
        aws_region=AWAY,
        bucket=away_bucket,
        region_buckets={HOME: base.bucket},
        redis_prefix=base.redis_prefix + "eu:",
        replica_miss_cache_s=0,  # each URL asks again: the test decides when bytes land
    )
    try:
        async with region(home_settings) as home, region(away_settings) as away:
            yield World(home, away, Replicator(home, away))
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{home_settings.redis_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


async def poll_until(worker: SqsWorker, done: Callable[[], Any], attempts: int = 20) -> None:
    for _ in range(attempts):
        if await done():
            return
        await worker.poll_once()
    assert await done(), "the worker never got there"


async def status_in(r: Region, media_id: str) -> str | None:
    media = await r.runtime.repo.get(media_id)
    return None if media is None else media.status.value


def bucket_of(url: str) -> str:
    return urlsplit(url).path.split("/")[1]  # path-style: /<bucket>/<key>


async def next_event(ws: WsClient, op: str) -> dict[str, Any]:
    message = await ws.receive(timeout=15)
    assert message["type"] == "next" and message["id"] == op, message
    event: dict[str, Any] = message["payload"]["data"]["mediaEvents"]
    return event


async def test_a_subscriber_in_the_replica_region_hears_a_completion_made_at_home(world: World) -> None:
    home, away = world.home, world.away
    data = jpeg_bytes(20_000)
    async with WsClient(away.api, away.token()) as ws:
        op = await ws.subscribe(EVENTS)
        await listening(away.api, "alice")  # registered before anything is announced

        payload = await create_upload(home.api, home.token(), data)
        media_id = payload["media"]["mediaId"]
        assert await put_upload(payload["upload"], data) == 200

        async def completed_at_home() -> bool:
            return await status_in(home, media_id) == "COMPLETED"

        await poll_until(home.worker, completed_at_home)

        # Global table first (about a second), bytes later (CRR): the away API lists the media
        # and signs its URL for the home bucket, which has the bytes.
        await world.replicate.table(HOME, AWAY)
        body = await gql(away.api, MEDIA, {"id": payload["media"]["id"]}, token=away.token())
        assert body["data"]["media"]["status"] == "COMPLETED", body
        assert bucket_of(body["data"]["media"]["url"]) == home.settings.bucket
        assert "/us-east-1/s3/" in body["data"]["media"]["url"].replace("%2F", "/")
        row_before = await away.runtime.repo.get(media_id)

        # CRR lands the objects; the original's ObjectCreated reaches the away worker.
        copied = await world.replicate.objects(HOME, AWAY)
        assert f"uploads/{media_id}" in copied
        assert await away.worker.poll_once() == 1

        event = await next_event(ws, op)
        assert event["type"] == "COMPLETED"
        assert event["media"]["mediaId"] == media_id
        assert bucket_of(event["media"]["url"]) == away.settings.bucket

    # The away worker announced only: no write, no derived objects of its own.
    assert await away.runtime.repo.get(media_id) == row_before
    listed = await away.clients.s3.list_objects_v2(Bucket=away.settings.bucket)
    assert sorted(entry["Key"] for entry in listed["Contents"]) == sorted(copied)

    body = await gql(away.api, MEDIA, {"id": payload["media"]["id"]}, token=away.token())
    url = body["data"]["media"]["url"]
    assert bucket_of(url) == away.settings.bucket
    assert "/eu-west-1/s3/" in url.replace("%2F", "/")


async def test_the_replica_worker_keeps_an_event_whose_row_has_not_arrived(world: World) -> None:
    home, away = world.home, world.away
    data = jpeg_bytes()
    payload = await create_upload(home.api, home.token(), data)
    media_id = payload["media"]["mediaId"]
    assert await put_upload(payload["upload"], data) == 200

    async def completed_at_home() -> bool:
        return await status_in(home, media_id) == "COMPLETED"

    await poll_until(home.worker, completed_at_home)

    # Bytes overtake the row (unusual, possible): the event is kept for a retry.
    await world.replicate.objects(HOME, AWAY)
    assert await away.worker.poll_once() == 1
    assert await status_in(away, media_id) is None  # nothing written
    await world.replicate.table(HOME, AWAY)
    attributes = await away.clients.sqs.get_queue_attributes(
        QueueUrl=away.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "1"

    async with WsClient(away.api, away.token()) as ws:
        op = await ws.subscribe(EVENTS)
        await listening(away.api, "alice")
        assert await away.worker.poll_once() == 1  # the retry: the row is COMPLETED here now
        event = await next_event(ws, op)
        assert (event["type"], event["media"]["mediaId"]) == ("COMPLETED", media_id)
    assert await away.runtime.repo.get(media_id) == await home.runtime.repo.get(media_id)


async def test_the_replica_worker_never_runs_the_pipeline(world: World) -> None:
    home, away = world.home, world.away
    data = jpeg_bytes()
    payload = await create_upload(home.api, home.token(), data)
    media_id = payload["media"]["mediaId"]
    await world.replicate.table(HOME, AWAY)  # PENDING in both regions
    pending = await away.runtime.repo.get(media_id)
    assert pending is not None and pending.status.value == "PENDING"
    assert await put_upload(payload["upload"], data) == 200

    async def completed_at_home() -> bool:
        return await status_in(home, media_id) == "COMPLETED"

    await poll_until(home.worker, completed_at_home)

    # The bytes replicate before the COMPLETED row: the away worker sees PENDING and must not
    # verify, derive or write (that is the home region's job); it keeps the event.
    copied = await world.replicate.objects(HOME, AWAY)
    assert await away.worker.poll_once() == 1
    assert await away.runtime.repo.get(media_id) == pending
    listed = await away.clients.s3.list_objects_v2(Bucket=away.settings.bucket)
    assert sorted(entry["Key"] for entry in listed["Contents"]) == sorted(copied)

    await world.replicate.table(HOME, AWAY)
    async with WsClient(away.api, away.token()) as ws:
        op = await ws.subscribe(EVENTS)
        await listening(away.api, "alice")
        assert await away.worker.poll_once() == 1
        event = await next_event(ws, op)
        assert (event["type"], event["media"]["mediaId"]) == ("COMPLETED", media_id)
    assert await away.runtime.repo.get(media_id) == await home.runtime.repo.get(media_id)


async def test_uploads_through_the_replica_region_go_to_the_home_bucket(world: World) -> None:
    home, away = world.home, world.away
    data = jpeg_bytes()
    payload = await create_upload(away.api, away.token(), data)
    media_id = payload["media"]["mediaId"]
    url = payload["upload"]["url"]
    assert bucket_of(url) == home.settings.bucket
    assert "/us-east-1/s3/" in url.replace("%2F", "/")
    assert await put_upload(payload["upload"], data) == 200

    # The row was written in the away region and has not replicated: the home worker keeps the
    # event for a retry instead of dropping it.
    assert await home.worker.poll_once() == 1
    assert await status_in(home, media_id) is None
    await world.replicate.table(AWAY, HOME)

    async def completed_at_home() -> bool:
        return await status_in(home, media_id) == "COMPLETED"

    await poll_until(home.worker, completed_at_home)
    # Nothing was written to the away bucket by the upload or the pipeline.
    listed = await away.clients.s3.list_objects_v2(Bucket=away.settings.bucket)
    assert listed.get("KeyCount", 0) == 0


async def test_concurrent_edits_in_two_regions_last_writer_wins(world: World) -> None:
    home, away = world.home, world.away
    data = jpeg_bytes()
    payload = await create_upload(home.api, home.token(), data)
    media_id, gid = payload["media"]["mediaId"], payload["media"]["id"]
    await world.replicate.table(HOME, AWAY)

    # While the upload is PENDING, the replica region refuses edits: a whole-item write there
    # could win over the home region's status move and take the media back to PENDING.
    body = await gql(away.api, UPDATE, {"id": gid, "title": "from eu"}, token=away.token())
    assert error_codes(body) == ["CONFLICT"], body

    assert await put_upload(payload["upload"], data) == 200

    async def completed_at_home() -> bool:
        return await status_in(home, media_id) == "COMPLETED"

    await poll_until(home.worker, completed_at_home)
    await world.replicate.table(HOME, AWAY)
    version = (await home.runtime.repo.get(media_id)).version  # type: ignore[union-attr]

    # Both regions accept an edit conditioned on the same version: the condition holds in
    # the replica the request reaches, against what that replica has seen.
    us = await gql(home.api, UPDATE, {"id": gid, "title": "from us"}, token=home.token())
    eu = await gql(away.api, UPDATE, {"id": gid, "title": "from eu"}, token=away.token())
    assert "errors" not in us and "errors" not in eu, (us, eu)
    home_row, away_row = await home.runtime.repo.get(media_id), await away.runtime.repo.get(media_id)
    assert home_row is not None and away_row is not None
    assert home_row.version == away_row.version == version + 1

    # Replication: the later write (eu) replaces the whole item everywhere, silently.
    await world.replicate.item(AWAY, HOME, media_id)
    for r in (home, away):
        body = await gql(r.api, MEDIA, {"id": gid}, token=r.token())
        assert body["data"]["media"]["title"] == "from eu", body
        assert body["data"]["media"]["status"] == "COMPLETED"


async def test_replica_urls_cache_the_answer_and_fall_back_when_s3_fails(
    moto_endpoint: str, redis_url: str
) -> None:
    home_settings = make_settings(moto_endpoint, redis_url)
    async with AsyncExitStack() as stack:
        clients = await open_clients(home_settings.aws, stack)
        await clients.s3.create_bucket(Bucket=home_settings.bucket)
        await clients.s3.create_bucket(Bucket=home_settings.bucket + "-r")
        await clients.s3.put_object(Bucket=home_settings.bucket, Key="k", Body=b"x")
        now = [0.0]
        home = S3BlobStore(clients.s3, home_settings.bucket)
        store = ReplicaAwareBlobStore(
            clients.s3,
            home_settings.bucket + "-r",
            home=home,
            hit_ttl_s=100,
            miss_ttl_s=5,
            clock=lambda: now[0],
        )
        assert bucket_of(await store.presign_get("k", expires_in=60)) == home_settings.bucket
        await clients.s3.put_object(Bucket=home_settings.bucket + "-r", Key="k", Body=b"x")
        # Within the miss TTL the earlier "not here" is believed; after it, HEAD is asked again.
        assert bucket_of(await store.presign_get("k", expires_in=60)) == home_settings.bucket
        now[0] = 6.0
        assert bucket_of(await store.presign_get("k", expires_in=60)) == home_settings.bucket + "-r"
        assert (await store.head("k")) is not None
        # An unreachable replica bucket (here: one that does not exist) reads from home.
        broken = ReplicaAwareBlobStore(clients.s3, "no-such-bucket-anywhere", home=home)
        assert bucket_of(await broken.presign_get("k", expires_in=60)) == home_settings.bucket


def test_multi_region_settings_are_checked(moto_endpoint: str, redis_url: str) -> None:
    with pytest.raises(ValueError, match="REGION_BUCKETS"):
        make_settings(moto_endpoint, redis_url, aws_region=AWAY, home_region=HOME, replica_regions=(AWAY,))
    with pytest.raises(ValueError, match="home region or a replica"):
        make_settings(moto_endpoint, redis_url, aws_region="ap-south-1", home_region=HOME)
    with pytest.raises(ValueError, match="needs MEDIAGRAPH_HOME_REGION"):
        make_settings(moto_endpoint, redis_url, replica_regions=(AWAY,))
    away = make_settings(
        moto_endpoint,
        redis_url,
        aws_region=AWAY,
        home_region=HOME,
        replica_regions="eu-west-1, ap-south-1",
        region_buckets="us-east-1=bucket-a,ap-south-1=bucket-c",
    )
    assert away.replica_regions == (AWAY, "ap-south-1")
    assert not away.is_home_region and away.home_bucket == "bucket-a"
    single = make_settings(moto_endpoint, redis_url)
    assert single.is_home_region and single.home_bucket == single.bucket
