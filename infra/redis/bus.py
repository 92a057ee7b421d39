"""RedisEventBus: publish media events once, fan them out to local subscribers.

One pub/sub connection per process, whatever the number of subscribers: the first local
subscriber of a user SUBSCRIBEs that user's channel, the last one to leave UNSUBSCRIBEs it. On a
Redis Cluster pub/sub is sharded: the channel lives in the user's hash slot, the publish script
SPUBLISHes on it, and the process SSUBSCRIBEs on the node of that slot (one connection per node
that holds any of its subscriptions; docs/operations.md, "Redis Cluster").
Each message is decoded once and the same event object is queued for every subscriber.
Queues are bounded: a subscriber that falls `queue_size` events behind is cut off
(SlowConsumer) rather than letting memory grow.

Every event also goes into a bounded per-user Stream: a subscriber with `since` is replayed
what it missed, then continues live (docs/realtime.md).

Epochs. Beside each stream lives its epoch, a random id set when the stream's history begins
(the first publish, or the first `last_id`). An event id is `<epoch>.<stream id>`. A Redis that
lost its data (a restart without persistence, a failover to an empty replica, FLUSHALL) lost the
epoch with the stream, and the next publish starts a new one: a `since` of the old epoch then
answers SINCE_EXPIRED (the client refetches) instead of an empty, seemingly complete replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio.client import PubSub
from redis.exceptions import ClusterError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.observability import metrics
from infra.redis.client import RedisClient, is_cluster
from infra.redis.keys import RedisKeys
from services.core.errors import MediagraphError
from services.core.events import EventsExpired, MediaEvent, event_epoch, event_position

log = logging.getLogger("mediagraph.bus")

# Dedupe, append to the user's stream, trim it by length and by age, and publish: one atomic
# step, so a change is either announced once with an id, or not at all, and the order of the
# channel is the order of the stream. Trimming is exact, and the newest id it ever removed is
# kept beside the stream (Redis records it only for XDEL): a `since` before it has a gap.
# The epoch (KEYS[4]) is taken, or started with ARGV[6], and lives as long as the stream.
_PUBLISH = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) == false then
  return false
end
redis.call('SET', KEYS[4], ARGV[6], 'NX')
local epoch = redis.call('GET', KEYS[4])
local function newer(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local id = epoch .. '.' .. redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
-- The marker keeps the id: mediaStatus asks under which id a media's current state was announced.
redis.call('SET', KEYS[1], id, 'EX', ARGV[3])
local cut = nil
local excess = redis.call('XLEN', KEYS[2]) - tonumber(ARGV[4])
if excess > 0 then
  local gone = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', excess)
  cut = gone[#gone][1]
end
local now = redis.call('TIME')
local age_ms = tonumber(ARGV[5]) * 1000
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age_ms
local aged = redis.call('XREVRANGE', KEYS[2], '(' .. string.format('%.0f', oldest) .. '-0', '-', 'COUNT', 1)
if #aged > 0 and (cut == nil or newer(aged[1][1], cut)) then
  cut = aged[1][1]
end
if cut ~= nil then
  local ms, seq = string.match(cut, '(%d+)-(%d+)')
  redis.call('XTRIM', KEYS[2], 'MINID', ms .. '-' .. string.format('%.0f', tonumber(seq) + 1))
  redis.call('SET', KEYS[3], cut)
end
redis.call('PEXPIRE', KEYS[2], age_ms)
redis.call('PEXPIRE', KEYS[3], age_ms)
redis.call('PEXPIRE', KEYS[4], age_ms)
redis.call('PUBLISH', ARGV[1], id .. '|' .. ARGV[2])
return id
"""
# On a Redis Cluster the channel is a shard channel of the user's slot (infra/redis/keys.py):
# SPUBLISH reaches the SSUBSCRIBErs of that slot's node only, whichever node they connected to.
_SPUBLISH = _PUBLISH.replace("redis.call('PUBLISH',", "redis.call('SPUBLISH',")

# One page of a replay, with the trim marker, the epoch and the server's clock read in the
# same instant.
_REPLAY = """
local now = redis.call('TIME')
local now_ms = string.format('%.0f', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local trimmed = redis.call('GET', KEYS[2]) or '0-0'
local epoch = redis.call('GET', KEYS[3]) or ''
return {now_ms, trimmed, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2]), epoch}
"""
_REPLAY_PAGE = 200

# The newest id of a user's stream; with none kept, an id just before anything XADD can give
# from now on (an id of the current millisecond could equal the next entry's). Either in the
# stream's epoch, started here (ARGV[1]) if there is none yet.
_LAST_ID = """
redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
local epoch = redis.call('GET', KEYS[2])
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #newest > 0 then
  return epoch .. '.' .. newest[1][1]
end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - 1
return epoch .. '.' .. string.format('%.0f', ms) .. '-18446744073709551615'
"""


class SlowConsumer(MediagraphError):
    code = "RATE_LIMITED"


class BusInterrupted(MediagraphError):
    """The process lost its pub/sub connection: events may have been missed meanwhile. The
    client resubscribes with `since` = the last eventId it got, and replay fills the gap."""


# Redis cannot be reached, or (on a cluster) the node of a slot is down or moving.
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ClusterError, RedisClusterException, OSError)

_CLOSED = object()
_INTERRUPTED = object()
Position = tuple[int, int]


class _Subscriber:
    __slots__ = ("backlog", "last", "overflowed", "queue", "user_id")

    def __init__(self, user_id: str, queue_size: int) -> None:
        self.user_id = user_id
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
        self.overflowed = False
        # Replayed events, delivered before anything live; live ones at or before `last` are
        # the seam's duplicates and are skipped.
        self.backlog: list[tuple[Position, MediaEvent]] = []
        self.last: Position | None = None

    def offer(self, item: tuple[Position, MediaEvent]) -> None:
        if self.overflowed:
            metrics.EVENTS_DROPPED.labels(reason="slow_consumer").inc()
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            metrics.EVENTS_DROPPED.labels(reason="slow_consumer").inc()
            return
        metrics.EVENTS_DELIVERED.inc()

    async def __aiter__(self) -> AsyncIterator[MediaEvent]:
        backlog, self.backlog = self.backlog, []
        for position, event in backlog:
            self.last = position
            yield event
        while True:
            if self.overflowed and self.queue.empty():
                raise SlowConsumer("subscriber fell too far behind; resubscribe with since", reason="SLOW")
            item = await self.queue.get()
            if item is _CLOSED:
                return
            if item is _INTERRUPTED:
                raise BusInterrupted(
                    "event connection interrupted; resubscribe with since", reason="RESUBSCRIBE"
                )
            position, event = item  # type: ignore[misc]  # only tuples besides the sentinels
            if self.last is not None and position <= self.last:
                continue
            self.last = position
            yield event


class RedisEventBus:
    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str,
        queue_size: int = 100,
        stream_maxlen: int = 1000,
        stream_max_age_s: int = 24 * 3600,
        dedupe_ttl_s: int = 7 * 24 * 3600,
        confirm_timeout_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        # A cluster's pub/sub is sharded: SSUBSCRIBE on the node of each user's slot.
        self._sharded = is_cluster(redis)
        self._queue_size = queue_size
        self._stream_maxlen = stream_maxlen
        self._stream_max_age_s = stream_max_age_s
        self._dedupe_ttl_s = dedupe_ttl_s
        self._script = redis.register_script(_SPUBLISH if self._sharded else _PUBLISH)
        self._replay = redis.register_script(_REPLAY)
        self._last_id = redis.register_script(_LAST_ID)
        self._subscribers: dict[str, set[_Subscriber]] = {}
        # Per user: set once Redis has confirmed the SUBSCRIBE (its reply came back), so a
        # replay read after it cannot miss an event published in between.
        self._subscribed: dict[str, asyncio.Future[None]] = {}
        # SUBSCRIBEs sent per user whose reply is not read yet: a leave-and-rejoin sends two,
        # and only the reply to the last one means "subscribed now".
        self._unconfirmed: dict[str, int] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._confirm_timeout_s = confirm_timeout_s
        # Whether the pub/sub connection answered its last read: /readyz reports a bus that
        # cannot deliver live events as not ready.
        self._connected = False

    def channel(self, user_id: str) -> str:
        return self._keys.events_channel(user_id)

    def stream_key(self, user_id: str) -> str:
        return self._keys.event_stream(user_id)

    def trimmed_key(self, user_id: str) -> str:
        return self._keys.event_trimmed(user_id)

    def epoch_key(self, user_id: str) -> str:
        return self._keys.event_epoch(user_id)

    async def publish(self, event: MediaEvent) -> str | None:
        payload = json.dumps(event.to_record(), separators=(",", ":"))
        result = await self._script(
            keys=[
                self._keys.event_published(event.owner_id, event.dedupe_key),
                self.stream_key(event.owner_id),
                self.trimmed_key(event.owner_id),
                self.epoch_key(event.owner_id),
            ],
            args=[
                self.channel(event.owner_id),
                payload,
                self._dedupe_ttl_s,
                self._stream_maxlen,
                self._stream_max_age_s,
                _new_epoch(),
            ],
        )
        if result is None:
            metrics.EVENTS_DEDUPLICATED.inc()
            return None
        metrics.EVENTS_PUBLISHED.labels(type=event.type.value).inc()
        return result.decode() if isinstance(result, bytes) else str(result)

    async def published_id(self, event: MediaEvent) -> str | None:
        value = await self._redis.get(self._keys.event_published(event.owner_id, event.dedupe_key))
        text = _text(value) if value is not None else None
        # Markers written before ids were kept hold "1": published, under an unknown id.
        return text if text is not None and "-" in text else None

    async def deliver_pending(self, media_id: str) -> int:
        return 0  # no outbox behind this bus: what was published is all there is

    async def last_id(self, user_id: str) -> str:
        keys = [self.stream_key(user_id), self.epoch_key(user_id)]
        return _text(await self._last_id(keys=keys, args=[_new_epoch(), self._stream_max_age_s * 1000]))

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: str, since: str | None = None) -> AsyncIterator[_Subscriber]:
        """Live events of `user_id`; with `since`, the kept ones after it first.
        Raises BadUserInput (MALFORMED_SINCE) and EventsExpired (SINCE_EXPIRED)."""
        start = event_position(since) if since is not None else None
        subscriber = _Subscriber(user_id, self._queue_size)
        # Live first, then the history: whatever is published meanwhile is in both, and the
        # subscriber drops the live copy (its id is not after the last replayed one).
        await self._add(subscriber)
        try:
            if since is not None and start is not None:
                subscriber.backlog = await self._history(user_id, since)
                if subscriber.backlog:
                    subscriber.last = subscriber.backlog[-1][0]
                else:
                    subscriber.last = start
            yield subscriber
        finally:
            await self._remove(subscriber)

    async def ping(self) -> None:
        """Raises unless the bus can serve: Redis answers, and (once started) the pub/sub
        connection is up and its reader running."""
        await self._redis.execute_command("PING")
        if self._reader is not None:
            if self._reader.done():
                raise RedisConnectionError("the event bus reader has stopped")
            if not self._connected:
                raise RedisConnectionError("the pub/sub connection is down")

    async def start(self) -> None:
        self._pubsub = self._redis.pubsub()
        # A control channel keeps the connection open while no user is subscribed.
        await self._subscribe(self._keys.bus_control())
        self._connected = True
        self._reader = asyncio.create_task(self._read(), name="redis-event-bus")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._broadcast(_CLOSED)
        if self._pubsub is not None:
            await self._pubsub.aclose()

    @property
    def local_subscribers(self) -> int:
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    def listening(self, user_id: str) -> int:
        """The user's local subscribers once Redis has confirmed the channel subscription (0
        before): from then on every event published for the user reaches each of them. What a
        caller waits on instead of sleeping."""
        confirmed = self._subscribed.get(user_id)
        if confirmed is None or not confirmed.done():
            return 0
        return len(self._subscribers.get(user_id, ()))

    async def _history(self, user_id: str, since: str) -> list[tuple[Position, MediaEvent]]:
        """The kept events after `since`, oldest first; EventsExpired if any of them was trimmed
        or the history `since` belongs to was lost."""
        start = event_position(since)
        epoch = event_epoch(since)
        max_age_ms = self._stream_max_age_s * 1000
        events: list[tuple[Position, MediaEvent]] = []
        cursor = start
        while True:
            now_ms, trimmed, entries, current_epoch = await self._replay(
                keys=[self.stream_key(user_id), self.trimmed_key(user_id), self.epoch_key(user_id)],
                args=[f"{cursor[0]}-{cursor[1]}", _REPLAY_PAGE],
            )
            # Expired: another history (Redis lost the one `since` is of, or `since` is from
            # before epochs), an entry after the cursor was trimmed, or `since` is older than
            # the promised age (the whole stream may have expired with its key).
            if (
                epoch is None
                or epoch != _text(current_epoch)
                or cursor < event_position(_text(trimmed))
                or start[0] < int(now_ms) - max_age_ms
            ):
                raise EventsExpired(since)
            for raw_id, fields in entries:  # from a script: fields is a flat [name, value] list
                event_id = f"{epoch}.{_text(raw_id)}"
                event = _decode(event_id, _text(fields[1]))
                cursor = event_position(event_id)
                if event is not None and event.owner_id == user_id:
                    events.append((cursor, event))
            if len(entries) < _REPLAY_PAGE:
                return events

    async def _add(self, subscriber: _Subscriber) -> None:
        user_id = subscriber.user_id
        try:
            async with self._lock:
                subscribers = self._subscribers.setdefault(user_id, set())
                subscribers.add(subscriber)
                if len(subscribers) == 1 and self._pubsub is not None:
                    self._subscribed[user_id] = asyncio.get_running_loop().create_future()
                    self._unconfirmed[user_id] = self._unconfirmed.get(user_id, 0) + 1
                    try:
                        await self._subscribe(self.channel(user_id))
                    except BaseException:
                        # No reply will come for a SUBSCRIBE that failed: count it out again, or
                        # every later subscriber of this user waits for a reply that never comes.
                        self._forget_unconfirmed(user_id)
                        raise
                confirmed = self._subscribed.get(user_id)
            if confirmed is not None:
                await asyncio.wait_for(asyncio.shield(confirmed), timeout=self._confirm_timeout_s)
        except (*_UNAVAILABLE, TimeoutError) as exc:
            await self._remove(subscriber)
            metrics.EVENTS_DROPPED.labels(reason="subscribe_failed").inc()
            raise BusInterrupted(
                "the event connection is unavailable; resubscribe (with since) in a few seconds",
                reason="RESUBSCRIBE",
                retryAfter=2,
            ) from exc
        except BaseException:
            await self._remove(subscriber)
            raise

    def _forget_unconfirmed(self, user_id: str) -> None:
        left = self._unconfirmed.get(user_id, 0) - 1
        if left > 0:
            self._unconfirmed[user_id] = left
        else:
            self._unconfirmed.pop(user_id, None)

    async def _remove(self, subscriber: _Subscriber) -> None:
        async with self._lock:
            subscribers = self._subscribers.get(subscriber.user_id)
            if subscribers is None or subscriber not in subscribers:
                return
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.user_id]
                self._subscribed.pop(subscriber.user_id, None)
                if self._pubsub is not None:
                    with contextlib.suppress(*_UNAVAILABLE):
                        await self._unsubscribe(self.channel(subscriber.user_id))

    async def _subscribe(self, channel: str) -> None:
        assert self._pubsub is not None
        if self._sharded:
            await self._pubsub.ssubscribe(channel)
        else:
            await self._pubsub.subscribe(channel)

    async def _unsubscribe(self, channel: str) -> None:
        assert self._pubsub is not None
        if self._sharded:
            await self._pubsub.sunsubscribe(channel)
        else:
            await self._pubsub.unsubscribe(channel)

    async def _next_message(self) -> dict[str, Any] | None:
        assert self._pubsub is not None
        message: dict[str, Any] | None
        if self._sharded:
            # ClusterPubSub polls one connection per node that holds a shard channel.
            message = await self._pubsub.get_sharded_message(timeout=1.0)
        else:
            message = await self._pubsub.get_message(timeout=1.0)
        return message

    def _broadcast(self, sentinel: object) -> None:
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                with contextlib.suppress(asyncio.QueueFull):
                    subscriber.queue.put_nowait(sentinel)

    async def _read(self) -> None:
        assert self._pubsub is not None
        backoff = 0.1
        while True:
            try:
                message = await self._next_message()
                backoff = 0.1
                if not self._connected:
                    log.info("redis pub/sub connection restored")
                self._connected = True
            except _UNAVAILABLE as exc:
                # redis-py reconnects and resubscribes on the next read; wait, don't spin. Events
                # published meanwhile never reach this process: end every local subscription so
                # its client resumes with `since`, from the stream, with nothing missed.
                if self._connected:
                    log.warning("redis pub/sub connection lost; retrying", extra={"error": str(exc)})
                self._connected = False
                # Replies to SUBSCRIBEs sent on the lost connection never come; the reconnect
                # resubscribes every channel redis-py holds and those replies confirm whoever
                # still waits. One reply per held channel is therefore expected: counted here,
                # it is not taken later for a sign that a newer subscription missed events.
                self._unconfirmed = self._held_after_reconnect()
                self._broadcast(_INTERRUPTED)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if message is None:
                continue
            kind = _text(message.get("type") or "")
            user_id = self._keys.user_of_channel(_text(message["channel"]))
            if user_id is None:
                continue
            if kind in ("message", "smessage"):
                self._dispatch(user_id, _text(message["data"]))
            elif kind in ("subscribe", "ssubscribe"):
                self._confirm(user_id)

    def _held_after_reconnect(self) -> dict[str, int]:
        """The users whose channel redis-py resubscribes on its next connection (single node;
        on a cluster each node reconnects on its own, so nothing is assumed there)."""
        if self._sharded or self._pubsub is None:
            return {}
        held: dict[str, int] = {}
        for channel in list(self._pubsub.channels):
            user_id = self._keys.user_of_channel(_text(channel))
            if user_id is not None:
                held[user_id] = 1
        return held

    def _confirm(self, user_id: str) -> None:
        left = self._unconfirmed.get(user_id, 0) - 1
        if left > 0:
            self._unconfirmed[user_id] = left
            return
        self._unconfirmed.pop(user_id, None)
        confirmed = self._subscribed.get(user_id)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)
        elif left < 0 and confirmed is not None:
            # A reply to no SUBSCRIBE of ours: redis-py resubscribed after a reconnect. On a
            # cluster one node's connection can drop without the read failing, so this is the
            # only sign that this user's events published meanwhile were missed: end the user's
            # subscriptions, and their clients resume with `since`.
            for subscriber in self._subscribers.get(user_id, ()):
                with contextlib.suppress(asyncio.QueueFull):
                    subscriber.queue.put_nowait(_INTERRUPTED)

    def _dispatch(self, user_id: str, data: str) -> None:
        subscribers = self._subscribers.get(user_id)
        if not subscribers:
            return
        event_id, _, payload = data.partition("|")
        event = _decode(event_id, payload)
        if event is None or event.owner_id != user_id:
            return  # never deliver another user's event, whatever the channel said
        item = (event_position(event_id), event)
        for subscriber in subscribers:
            subscriber.offer(item)


def _decode(event_id: str, payload: str) -> MediaEvent | None:
    try:
        record: dict[str, Any] = json.loads(payload)
        record["event_id"] = event_id
        return MediaEvent.from_record(record)
    except (ValueError, KeyError, TypeError):
        log.exception("undecodable event dropped", extra={"event_id": event_id})
        metrics.EVENTS_DROPPED.labels(reason="undecodable").inc()
        return None


def _new_epoch() -> str:
    """A candidate epoch: used only if the stream has none yet."""
    return secrets.token_hex(4)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
