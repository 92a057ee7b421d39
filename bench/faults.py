"""Faults without loss (issue 17): what the transactional outbox costs, and how fast it catches
up after a Redis outage. moto in its own process; a private redis-server of this benchmark
(stopped here; the shared Redis never is).

1. Steady state: events delivered per second to a live subscriber when each event is a
   createUpload's write (record + counter transaction) announced through the new path (the
   outbox item in the same transaction, the writer's publish right after the commit, and the
   relay running as in every process: its passes over the outbox and its continuous batched
   delete of published items, whatever is left flushed before the clock stops), divided by the
   same writes announced by a direct publish (no outbox). Same run, same concurrency, same moto
   and Redis; measured direct, outbox, outbox, direct, each run from the same table (its
   records are deleted after it, off the clock: moto copies the table for every transaction, so
   a table growing run by run would favour whichever path ran first), and each rate is all its
   events over all its time. BENCH_FAULTS_STOCK_MOTO=1 runs moto's own TransactWriteItems.
2. Outage: writers keep committing while Redis is stopped for OUTAGE_S seconds (60, the issue's
   figure); then Redis starts. Reported: the backlog, its drain rate (events per second from
   Redis back to the outbox empty), the time from Redis back to the first delivered event, next
   to the time to the first successful PING.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from ulid import ULID

from bench.core_path import _settings, prepare_resources
from bench.harness import free_port, subprocess_server
from infra.aws import dynamo_keys as keys
from infra.aws.clients import open_clients
from infra.aws.dynamo import DynamoMediaRepository
from infra.aws.outbox import SHARDS, OutboxBus
from infra.redis.bus import RedisEventBus
from services.core.errors import Conflict
from services.core.events import MediaEvent, MediaEventType
from services.core.media import MediaStatus
from tests.fakes import make_media
from tests.redis_process import RedisProcess

# BENCH_FAULTS_STOCK_MOTO=1: moto's own TransactWriteItems, which copies the table once per
# transaction item (infra/aws/embedded.py), to compare with the figures before that was fixed.
_MOTO = (
    "import os, threading, sys\n"
    "from infra.aws import embedded\n"
    "if os.environ.get('BENCH_FAULTS_STOCK_MOTO'):\n"
    "    embedded._copy_each_table_once = lambda: None\n"
    "with embedded.moto_server(int(sys.argv[1])):\n"
    "    threading.Event().wait()\n"
)
_FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # moto's; never real AWS
EVENTS = int(os.environ.get("BENCH_FAULTS_EVENTS", "600"))
CONCURRENCY = 16
OUTAGE_S = float(os.environ.get("BENCH_FAULTS_OUTAGE_S", "60"))
USER = "bench-faults"


def _owner(writer: int) -> str:
    # One owner per writer: concurrent transactions on one owner's counter item conflict.
    return f"{USER}-{writer}"


def _event(n: int, writer: int) -> MediaEvent:
    media = make_media(
        n.to_bytes(8, "big"), owner_id=_owner(writer), status=MediaStatus.PENDING, media_id=str(ULID())
    )
    return MediaEvent(MediaEventType.CREATED, media, datetime.now(UTC))


async def _create(repo: DynamoMediaRepository, event: MediaEvent, *, outbox: bool) -> None:
    # Conflict: moto under load, where botocore retried a transaction that had been applied
    # (DynamoDB itself dedupes the retry by its ClientRequestToken; moto does not). It is written.
    with contextlib.suppress(Conflict):
        await repo.create(event.media, events=(event,) if outbox else ())


class _Counter:
    """Live subscribers of every writer's owner on the bus: count what they are delivered."""

    def __init__(self) -> None:
        self.received = 0
        self.first_at: float | None = None


async def _count(bus: RedisEventBus, owner: str, counter: _Counter, ready: asyncio.Event) -> None:
    async with bus.subscribe(owner) as subscription:
        ready.set()
        async for _ in subscription:
            counter.received += 1
            if counter.first_at is None:
                counter.first_at = time.perf_counter()


async def _steady(
    repo: DynamoMediaRepository,
    bus: RedisEventBus,
    outbox: OutboxBus,
    client: Any,
    table: str,
    *,
    via_outbox: bool,
) -> float:
    """Seconds for EVENTS writes, CONCURRENCY at a time, each announced, until all delivered
    (and, through the outbox, every item deleted)."""
    counter = _Counter()
    readiness = [asyncio.Event() for _ in range(CONCURRENCY)]
    readers = [asyncio.create_task(_count(bus, _owner(w), counter, readiness[w])) for w in range(CONCURRENCY)]
    for ready in readiness:
        await ready.wait()

    created: list[str] = []

    async def writer(w: int) -> None:
        for n in range(w, EVENTS, CONCURRENCY):
            event = _event(n, w)
            created.append(event.media.id)
            if via_outbox:
                await _create(repo, event, outbox=True)
                await outbox.publish(event)
            else:
                await _create(repo, event, outbox=False)
                await bus.publish(event)

    started = time.perf_counter()
    relay = asyncio.create_task(outbox.run()) if via_outbox else None  # relay and clean-up
    await asyncio.gather(*(writer(w) for w in range(CONCURRENCY)))
    while counter.received < EVENTS:
        await asyncio.sleep(0.001)
    if relay is not None:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        await outbox.flush_deletes()  # the clean-up is part of the cost (run() flushed already)
    elapsed = time.perf_counter() - started
    if via_outbox:
        assert await _outbox_size(client, table) == 0, "outbox items left undeleted"
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    # Off the clock: the records go again, so every run starts from the same table (moto copies
    # the table for each transaction: a table that grew run by run would favour later runs' rivals).
    for i in range(0, len(created), 25):
        deletes = [
            {"DeleteRequest": {"Key": keys.key(keys.media(m), keys.RECORD)}} for m in created[i : i + 25]
        ]
        await client.batch_write_item(RequestItems={table: deletes})
    return elapsed


async def _outbox_size(client: Any, table: str) -> int:
    total = 0
    for shard in range(SHARDS):
        start: dict[str, Any] | None = None
        while True:
            query: dict[str, Any] = {
                "TableName": table,
                "KeyConditionExpression": "#pk = :pk",
                "ExpressionAttributeNames": {"#pk": "pk"},
                "ExpressionAttributeValues": {":pk": {"S": f"OUTBOX#{shard}"}},
                "Select": "COUNT",
                "ConsistentRead": True,
            }
            if start is not None:
                query["ExclusiveStartKey"] = start
            response = await client.query(**query)
            total += int(response["Count"])
            start = response.get("LastEvaluatedKey")
            if start is None:
                break
    return total


async def _outage(
    repo: DynamoMediaRepository,
    outbox: OutboxBus,
    server: RedisProcess,
    client: Any,
    table: str,
    channels: list[str],
) -> dict[str, Any]:
    relay = asyncio.create_task(outbox.run())
    server.stop()
    committed = 0
    deadline = time.perf_counter() + OUTAGE_S

    async def writer(w: int) -> None:
        nonlocal committed
        n = 0
        while time.perf_counter() < deadline:
            event = _event(n, w)
            n += 1
            await _create(repo, event, outbox=True)
            await outbox.publish(event)  # Redis is down: left to the relay
            committed += 1

    await asyncio.gather(*(writer(w) for w in range(CONCURRENCY)))
    backlog = await _outbox_size(client, table)

    # Redis back: a client pinging in a tight loop, and one subscribed to the user's channel
    # as soon as it can be (what a resubscribing app does), each noting its first success.
    assert server.process is None
    started = time.perf_counter()
    server.process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(server.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            server.dir,
        ],
        stdout=subprocess.DEVNULL,
    )
    first_ping: float | None = None
    first_event: float | None = None
    delivered = 0

    async def pinger() -> None:
        nonlocal first_ping
        async with Redis.from_url(server.url, socket_connect_timeout=0.2) as redis:
            while first_ping is None:
                with contextlib.suppress(RedisError, OSError):
                    await redis.ping()
                    first_ping = time.perf_counter() - started
                    return
                await asyncio.sleep(0.001)

    async def listener() -> None:
        nonlocal first_event, delivered
        redis = Redis.from_url(server.url, socket_connect_timeout=0.2)
        while True:
            try:
                pubsub = redis.pubsub()
                await pubsub.subscribe(*channels)
                break
            except (RedisError, OSError):
                await asyncio.sleep(0.001)
        try:
            while delivered < backlog:
                message = await pubsub.get_message(timeout=1.0, ignore_subscribe_messages=True)
                if message is not None:
                    delivered += 1
                    if first_event is None:
                        first_event = time.perf_counter() - started
        finally:
            await pubsub.aclose()
            await redis.aclose()

    await asyncio.gather(pinger(), asyncio.wait_for(listener(), timeout=600))
    drained = time.perf_counter() - started
    relay.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relay
    assert first_ping is not None and first_event is not None
    return {
        "outage_s": OUTAGE_S,
        "backlog_events": backlog,
        "committed_during_outage": committed,
        "drain_events_per_s": round(backlog / drained, 1),
        "drain_s": round(drained, 2),
        "first_ping_after_redis_back_ms": round(first_ping * 1000, 1),
        "first_event_after_redis_back_ms": round(first_event * 1000, 1),
    }


async def section(redis_url: str) -> dict[str, Any]:
    moto_port = free_port()
    server = RedisProcess()
    server.start()
    try:
        with subprocess_server(["-c", _MOTO, str(moto_port)], moto_port, _FAKE_AWS):
            os.environ.update({key: os.environ.get(key, value) for key, value in _FAKE_AWS.items()})
            settings = _settings(f"http://127.0.0.1:{moto_port}", server.url, "bench-faults")
            await prepare_resources(settings)
            async with AsyncExitStack() as stack:
                clients = await open_clients(settings.aws, stack)
                redis = Redis.from_url(server.url)
                stack.push_async_callback(redis.aclose)
                bus = RedisEventBus(redis, prefix=settings.redis_prefix, stream_maxlen=100_000)
                await bus.start()
                stack.push_async_callback(bus.close)
                repo = DynamoMediaRepository(clients.dynamodb, settings.table)
                outbox = OutboxBus(bus, clients.dynamodb, settings.table, relay_interval_s=2.0)
                steady = (repo, bus, outbox, clients.dynamodb, settings.table)
                # Warm both paths, then measure direct, outbox, outbox, direct, each run from the
                # same table (its records deleted after it, off the clock).
                await _steady(*steady, via_outbox=False)
                await _steady(*steady, via_outbox=True)
                runs: dict[bool, list[float]] = {False: [], True: []}
                for via_outbox in (False, True, True, False):
                    runs[via_outbox].append(await _steady(*steady, via_outbox=via_outbox))
                direct, through = 2 * EVENTS / sum(runs[False]), 2 * EVENTS / sum(runs[True])
                result: dict[str, Any] = {
                    "moto_transactions": "stock"
                    if os.environ.get("BENCH_FAULTS_STOCK_MOTO")
                    else "copy each table once",
                    "events": EVENTS,
                    "concurrency": CONCURRENCY,
                    "outbox_events_per_s": round(through, 1),
                    "direct_events_per_s": round(direct, 1),
                    "outbox_ratio": round(through / direct, 2),
                    "run_seconds": {
                        "direct": [round(t, 2) for t in runs[False]],
                        "outbox": [round(t, 2) for t in runs[True]],
                    },
                }
                result.update(
                    await _outage(
                        repo,
                        outbox,
                        server,
                        clients.dynamodb,
                        settings.table,
                        [bus.channel(_owner(w)) for w in range(CONCURRENCY)],
                    )
                )
    finally:
        server.close()
    print(
        f"faults: write+announce through the outbox {result['outbox_events_per_s']} events/s vs "
        f"direct publish {result['direct_events_per_s']} events/s (ratio {result['outbox_ratio']}); "
        f"{result['outage_s']:.0f} s outage: {result['backlog_events']} events drained at "
        f"{result['drain_events_per_s']} events/s, first event "
        f"{result['first_event_after_redis_back_ms']} ms after Redis was back "
        f"(first PING {result['first_ping_after_redis_back_ms']} ms)"
    )
    return result
