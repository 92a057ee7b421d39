"""The transactional outbox: a committed change and its event cannot part.

Every write that announces something (createUpload, each status change, edits, deletes,
restores, reviews) puts its event into the media table in the same TransactWriteItems as the
change itself:

    pk=OUTBOX#<shard>   sk=<mediaId>#<version>#<TYPE>   event=<JSON>  at=<ms>  ttl=<epoch s>

So the change and its event commit together or not at all. Then:

    t0  commit (record + outbox item)
    t1  the writer publishes to Redis (dedupe marker, stream, PUBLISH in one script)
    t2  the outbox item is deleted, in a batch with others, off the request's path

If Redis is down at t1, or the writer dies between t0 and t1, the item stays. The relay, which
runs in every API and worker process, reads the outbox every `relay_interval_s` (sooner after
a failed publish), publishes what is older than `grace_s` in order, and deletes it. A
redelivered S3 notice or a retried createUpload calls `deliver_pending(media_id)`: the
missing events of that media go out at once, in version order, without waiting for the relay.

Duplicates: the bus's publish drops a change it has published before (its dedupe key), so an
item published twice (relay and writer racing, a delete that did not happen) is announced once.
Nothing republishes an event that is no longer in the outbox, so a Redis that lost its dedupe
markers does not see old events again.

Why this and not DynamoDB Streams: the stream would need its own reader with shard leases and
checkpoints (a Lambda in production, nothing moto runs reliably), and it gives every change,
not the announced ones; the outbox reuses the transaction each write already makes, works the
same on moto and AWS, and the relay is a query on four small partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import zlib
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from redis.exceptions import RedisClusterException, RedisError

from infra.aws import dynamo_keys as keys
from infra.aws.dynamo_paging import read_all
from infra.observability import metrics
from services.core.events import MediaEvent
from services.core.ports import EventBus, Subscription

log = logging.getLogger("mediagraph.outbox")

SHARDS = 4  # partitions the outbox spreads over: writes to one partition are capped by DynamoDB
KEEP_S = 7 * 24 * 3600  # an event not delivered in a week is dropped by DynamoDB's TTL
_BATCH = 25  # BatchWriteItem's limit
_UNREACHABLE = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)


def _partition(media_id: str) -> str:
    return keys.outbox(zlib.crc32(media_id.encode()) % SHARDS)


def _key(event: MediaEvent) -> dict[str, Any]:
    return keys.key(_partition(event.media.id), event.outbox_key)


def outbox_put(table: str, event: MediaEvent) -> dict[str, Any]:
    """The TransactWriteItems element that puts `event` into the outbox."""
    now = time.time()
    return {
        "Put": {
            "TableName": table,
            "Item": {
                **_key(event),
                "event": {"S": json.dumps(event.to_record(), separators=(",", ":"))},
                "at": {"N": str(int(now * 1000))},
                "ttl": {"N": str(int(now) + KEEP_S)},
            },
        }
    }


class OutboxBus:
    """The bus the services publish through: publishes at once, and leaves what it could not
    publish to the relay. Reads (subscribe, ids) go straight to the bus underneath."""

    def __init__(
        self,
        bus: EventBus,
        client: Any,
        table: str,
        *,
        relay_interval_s: float = 2.0,
        grace_s: float = 2.0,
        retry_interval_s: float = 0.5,
    ) -> None:
        self._bus = bus
        self._client = client
        self._table = table
        self._relay_interval_s = relay_interval_s
        self._grace_s = grace_s
        self._retry_interval_s = retry_interval_s
        self._deletes: list[dict[str, Any]] = []
        self._deletes_waiting = asyncio.Event()
        self._wake = asyncio.Event()
        self._behind = False  # a publish failed: the relay retries soon, not at its idle pace

    # --- publishing ---

    async def publish(self, event: MediaEvent) -> str | None:
        """After the write that put `event` in the outbox committed: publish it now, or, if the
        bus is unreachable, leave it to the relay (the write stands; never raises for that)."""
        try:
            event_id = await self._bus.publish(event)
        except _UNREACHABLE as exc:
            metrics.OUTBOX_DEFERRED.inc()
            log.warning(
                "event left in the outbox for the relay",
                extra={"media_id": event.media.id, "type": event.type.value, "error": repr(exc)},
            )
            self._behind = True
            self._wake.set()
            return None
        self._forget(event)
        return event_id

    async def deliver_pending(self, media_id: str) -> int:
        response = await self._client.query(
            TableName=self._table,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :media)",
            ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
            ExpressionAttributeValues={":pk": {"S": _partition(media_id)}, ":media": {"S": f"{media_id}#"}},
            ConsistentRead=True,
        )
        return await self._deliver(response.get("Items", []))

    async def _deliver(self, items: Iterable[dict[str, Any]]) -> int:
        """Publish outbox items in the order given; stop at the first the bus refuses (the rest
        of that media must not overtake it). Raises nothing for an unreachable bus."""
        delivered = 0
        for item in items:
            try:
                event = MediaEvent.from_record(json.loads(item["event"]["S"]))
            except (ValueError, KeyError, TypeError):
                log.exception("undecodable outbox item dropped", extra={"sk": item.get("sk")})
                self._queue_delete({"pk": item["pk"], "sk": item["sk"]})
                continue
            try:
                await self._bus.publish(event)
            except _UNREACHABLE as exc:
                self._behind = True
                log.warning("outbox relay: bus unreachable", extra={"error": repr(exc)})
                break
            metrics.OUTBOX_RELAYED.inc()
            self._forget(event)
            delivered += 1
        return delivered

    # --- reads: the bus underneath ---

    async def published_id(self, event: MediaEvent) -> str | None:
        return await self._bus.published_id(event)

    async def last_id(self, user_id: str) -> str:
        return await self._bus.last_id(user_id)

    def subscribe(self, user_id: str, since: str | None = None) -> AbstractAsyncContextManager[Subscription]:
        return self._bus.subscribe(user_id, since)

    async def ping(self) -> None:
        await self._bus.ping()

    # --- the relay and the clean-up ---

    async def run(self) -> None:
        """Relay and clean up until cancelled; pending deletes are flushed on the way out."""
        cleaner = asyncio.create_task(self._clean(), name="outbox-clean")
        try:
            while True:
                try:
                    pending = await self.relay_once()
                    metrics.OUTBOX_PENDING.set(pending)
                except Exception as exc:
                    self._behind = True
                    log.warning("outbox relay pass failed", extra={"error": repr(exc)})
                interval = self._retry_interval_s if self._behind else self._relay_interval_s
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)
        finally:
            cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cleaner
            with contextlib.suppress(Exception):
                await self.flush_deletes()

    async def relay_once(self) -> int:
        """One pass over every shard: publish the items older than the grace period, oldest
        version first per media. Returns how many items were left (not yet due, or refused)."""
        due_before = int((time.time() - self._grace_s) * 1000)
        left = 0
        self._behind = False
        for shard in range(SHARDS):
            async for items in self._pages(keys.outbox(shard)):
                due = [item for item in items if int(item["at"]["N"]) <= due_before]
                left += len(items) - await self._deliver(due)
        return left

    def _pages(self, partition: str) -> AsyncIterator[list[dict[str, Any]]]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            "ConsistentRead": True,
            "Limit": 200,
        }
        return read_all(self._client, query)

    def _forget(self, event: MediaEvent) -> None:
        self._queue_delete(_key(event))

    def _queue_delete(self, key: dict[str, Any]) -> None:
        self._deletes.append(key)
        self._deletes_waiting.set()

    async def _clean(self) -> None:
        while True:
            await self._deletes_waiting.wait()
            self._deletes_waiting.clear()
            try:
                await self.flush_deletes()
            except (BotoCoreError, ClientError, OSError) as exc:
                # Left in the outbox: the relay publishes them again, and the bus drops the repeat.
                log.warning("outbox clean-up failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(1.0)
                self._deletes_waiting.set()

    async def flush_deletes(self) -> None:
        """Delete every published item queued so far, 25 per request."""
        while self._deletes:
            batch, self._deletes = self._deletes[:_BATCH], self._deletes[_BATCH:]
            unique = list({(key["pk"]["S"], key["sk"]["S"]): key for key in batch}.values())
            try:
                response = await self._client.batch_write_item(
                    RequestItems={self._table: [{"DeleteRequest": {"Key": key}} for key in unique]}
                )
            except BaseException:
                self._deletes = batch + self._deletes
                raise
            unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
            self._deletes += [request["DeleteRequest"]["Key"] for request in unprocessed]
            if unprocessed:
                await asyncio.sleep(0.05)
