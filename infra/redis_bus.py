"""RedisEventBus: publish media events once, fan them out to local subscribers.

One pub/sub connection per process, whatever the number of subscribers: the first local
subscriber of a user SUBSCRIBEs that user's channel, the last one to leave UNSUBSCRIBEs it.
Each message is decoded once and the same event object is queued for every subscriber.
Queues are bounded: a subscriber that falls `queue_size` events behind is cut off
(SlowConsumer) rather than letting memory grow.

Every event also goes into a bounded per-user Stream, whose entry id is the event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra import metrics
from services.errors import MediagraphError
from services.events import MediaEvent

log = logging.getLogger("mediagraph.bus")

# Dedupe, append to the user's stream and publish: one atomic step, so a change is
# either announced once with an id, or not at all.
_PUBLISH = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) == false then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. '|' .. ARGV[2])
return id
"""


class SlowConsumer(MediagraphError):
    code = "RATE_LIMITED"


_CLOSED = object()


class _Subscriber:
    def __init__(self, user_id: str, queue_size: int) -> None:
        self.user_id = user_id
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
        self.overflowed = False

    def offer(self, event: MediaEvent) -> None:
        if self.overflowed:
            metrics.EVENTS_DROPPED.labels(reason="slow_consumer").inc()
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            metrics.EVENTS_DROPPED.labels(reason="slow_consumer").inc()
            return
        metrics.EVENTS_DELIVERED.inc()

    async def __aiter__(self) -> AsyncIterator[MediaEvent]:
        while True:
            if self.overflowed and self.queue.empty():
                raise SlowConsumer("subscriber fell too far behind; resubscribe")
            item = await self.queue.get()
            if item is _CLOSED:
                return
            assert isinstance(item, MediaEvent)
            yield item


class RedisEventBus:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        queue_size: int = 100,
        stream_maxlen: int = 1000,
        dedupe_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._queue_size = queue_size
        self._stream_maxlen = stream_maxlen
        self._dedupe_ttl_s = dedupe_ttl_s
        self._script = redis.register_script(_PUBLISH)
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def channel(self, user_id: str) -> str:
        return f"{self._prefix}events:{user_id}"

    def stream_key(self, user_id: str) -> str:
        return f"{self._prefix}stream:{user_id}"

    async def publish(self, event: MediaEvent) -> str | None:
        payload = json.dumps(event.to_record(), separators=(",", ":"))
        result = await self._script(
            keys=[f"{self._prefix}published:{event.dedupe_key}", self.stream_key(event.owner_id)],
            args=[self.channel(event.owner_id), payload, self._dedupe_ttl_s, self._stream_maxlen],
        )
        if result is None:
            metrics.EVENTS_DEDUPLICATED.inc()
            return None
        metrics.EVENTS_PUBLISHED.labels(type=event.type.value).inc()
        return result.decode() if isinstance(result, bytes) else str(result)

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: str) -> AsyncIterator[_Subscriber]:
        subscriber = _Subscriber(user_id, self._queue_size)
        await self._add(subscriber)
        try:
            yield subscriber
        finally:
            await self._remove(subscriber)

    async def ping(self) -> None:
        await self._redis.execute_command("PING")  # type: ignore[no-untyped-call]  # unannotated in redis-py

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        # A control channel keeps the connection open while no user is subscribed.
        await self._pubsub.subscribe(f"{self._prefix}bus:control")
        self._reader = asyncio.create_task(self._read(), name="redis-event-bus")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                with contextlib.suppress(asyncio.QueueFull):
                    subscriber.queue.put_nowait(_CLOSED)
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated

    @property
    def local_subscribers(self) -> int:
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    async def _add(self, subscriber: _Subscriber) -> None:
        async with self._lock:
            subscribers = self._subscribers.setdefault(subscriber.user_id, set())
            subscribers.add(subscriber)
            if len(subscribers) == 1 and self._pubsub is not None:
                await self._pubsub.subscribe(self.channel(subscriber.user_id))

    async def _remove(self, subscriber: _Subscriber) -> None:
        async with self._lock:
            subscribers = self._subscribers.get(subscriber.user_id)
            if subscribers is None:
                return
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.user_id]
                if self._pubsub is not None:
                    with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                        await self._pubsub.unsubscribe(self.channel(subscriber.user_id))

    async def _read(self) -> None:
        assert self._pubsub is not None
        backoff = 0.1
        channel_prefix = f"{self._prefix}events:"
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                # redis-py reconnects and resubscribes on the next read; wait, don't spin.
                log.warning("redis pub/sub connection lost; retrying", extra={"error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = _text(message["channel"])
            if not channel.startswith(channel_prefix):
                continue
            self._dispatch(channel[len(channel_prefix) :], _text(message["data"]))

    def _dispatch(self, user_id: str, data: str) -> None:
        subscribers = self._subscribers.get(user_id)
        if not subscribers:
            return
        event_id, _, payload = data.partition("|")
        try:
            record: dict[str, Any] = json.loads(payload)
            record["event_id"] = event_id
            event = MediaEvent.from_record(record)
        except (ValueError, KeyError, TypeError):
            log.exception("undecodable event dropped", extra={"event_id": event_id})
            metrics.EVENTS_DROPPED.labels(reason="undecodable").inc()
            return
        if event.owner_id != user_id:
            return  # never deliver another user's event, whatever the channel said
        for subscriber in subscribers:
            subscriber.offer(event)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
