"""RedisRateLimiter: token buckets in Redis, refilled and spent by one Lua script (atomic, and
shared by every API process). The clock is Redis's own (`TIME`), so API hosts whose clocks
disagree still share one consistent bucket. FallbackRateLimiter: the same, falling back to
buckets in the process (LocalRateLimiter) while Redis cannot answer: the API keeps serving
through a Redis outage, and the limits still hold, per process (docs/security.md#rate-limits;
counted in mediagraph_rate_limit_local_total)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import RedisError

from infra.observability import metrics
from infra.redis.client import RedisClient, is_cluster
from infra.redis.keys import RedisKeys
from services.core.ports import Bucket

log = logging.getLogger("mediagraph.rate_limit")
_WARN_EVERY_S = 30.0

# Token buckets, each refilled and charged its cost in one call (one round trip on one Redis node,
# for every request that charged in the same turn of the event loop). KEYS[i] bucket i; ARGV holds
# cost, rate (tokens/s) and burst (capacity) of each bucket in turn. The same bucket may come
# twice (two requests of one user): charged in order. Returns the wait of each in seconds (as
# strings: Lua numbers are truncated to integers in Redis replies), "0" when granted.
_BUCKETS_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local waits = {}
for i, key in ipairs(KEYS) do
  local cost = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local burst = tonumber(ARGV[3 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  local wait = 0
  if tokens >= cost then
    tokens = tokens - cost
  else
    wait = (cost - tokens) / rate
  end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  waits[i] = tostring(wait)
end
return waits
"""


_Charge = tuple[list[str], list[float], "asyncio.Future[list[float]]"]  # keys, args, its waits
_Turn = tuple[asyncio.AbstractEventLoop, list[_Charge]]
_MOST_CHARGES_PER_CALL = 256


class RedisRateLimiter:
    """On one Redis node, every charge made in the same turn of the event loop goes in one script
    call: a redis-py call costs the API process ~0.1 ms of CPU whatever it carries, a sixth of a
    cached read (docs/performance.md), and concurrent requests charge at nearly the same time.
    A charge waits for nothing but the end of the current turn. On a cluster, a script's keys
    must share a hash slot, and a user's and an address's buckets do not: there each bucket is its
    own call (sent together)."""

    def __init__(self, redis: RedisClient, *, prefix: str) -> None:
        self._keys = RedisKeys(prefix)
        self._script: Any = redis.register_script(_BUCKETS_SCRIPT)
        self._one_call = not is_cluster(redis)
        self._turn: _Turn | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def acquire(self, bucket: str, *, rate_per_s: float, burst: int, cost: int = 1) -> float:
        keys, args = [self._keys.rate_bucket(bucket)], [cost, rate_per_s, burst]
        if not self._one_call:
            (wait,) = await self._script(keys=keys, args=args)
            return _seconds(wait)
        (waited,) = await self._charge(keys, args)
        return waited

    async def acquire_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> list[float]:
        if not self._one_call:
            return list(
                await asyncio.gather(
                    *(
                        self.acquire(b.name, rate_per_s=b.rate_per_s, burst=b.burst, cost=cost)
                        for b in buckets
                    )
                )
            )
        args: list[float] = []
        for bucket in buckets:
            args += [cost, bucket.rate_per_s, bucket.burst]
        return await self._charge([self._keys.rate_bucket(b.name) for b in buckets], args)

    def _charge(self, keys: list[str], args: list[float]) -> asyncio.Future[list[float]]:
        loop = asyncio.get_running_loop()
        turn = self._turn
        # A new call for a new turn, a full one (one script must not hold Redis for long), or
        # another event loop (one that stopped mid-turn would never send the old one).
        if turn is None or turn[0] is not loop or len(turn[1]) >= _MOST_CHARGES_PER_CALL:
            turn = self._turn = (loop, [])
            loop.call_soon(self._send_turn, turn)
        waits: asyncio.Future[list[float]] = loop.create_future()
        turn[1].append((keys, args, waits))
        return waits

    def _send_turn(self, turn: _Turn) -> None:
        if self._turn is turn:
            self._turn = None
        task = turn[0].create_task(self._send(turn[1]))
        self._sending.add(task)  # a reference, so the task is not collected midway
        task.add_done_callback(self._sending.discard)

    async def _send(self, charges: list[_Charge]) -> None:
        keys = [key for charge_keys, _, _ in charges for key in charge_keys]
        args = [arg for _, charge_args, _ in charges for arg in charge_args]
        try:
            replies = [_seconds(wait) for wait in await self._script(keys=keys, args=args)]
        except BaseException as error:  # every waiter gets it (a caller falls back to local buckets)
            for _, _, waits in charges:
                if waits.done():
                    continue
                if isinstance(error, asyncio.CancelledError):
                    waits.cancel()
                else:
                    waits.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        start = 0
        for charge_keys, _, waits in charges:
            if not waits.done():  # a caller that gave up (its timeout) was charged all the same
                waits.set_result(replies[start : start + len(charge_keys)])
            start += len(charge_keys)


def _seconds(wait: bytes | str) -> float:
    return float(wait.decode() if isinstance(wait, bytes) else wait)


class LocalRateLimiter:
    """Token buckets in this process's memory, the same arithmetic as the script above: the
    fallback while Redis cannot answer. At most `max_buckets` are kept (the least recently used
    go first: a forgotten bucket starts full again)."""

    def __init__(self, *, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_buckets = max_buckets
        self._clock = clock

    async def acquire(self, bucket: str, *, rate_per_s: float, burst: int, cost: int = 1) -> float:
        now = self._clock()
        tokens, at = self._buckets.pop(bucket, (float(burst), now))
        tokens = min(burst, tokens + max(0.0, now - at) * rate_per_s)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / rate_per_s
        self._buckets[bucket] = (tokens, now)
        if len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)
        return wait

    async def acquire_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> list[float]:
        return [
            await self.acquire(b.name, rate_per_s=b.rate_per_s, burst=b.burst, cost=cost) for b in buckets
        ]


class FallbackRateLimiter:
    """Redis's buckets, shared by every API process; while Redis cannot answer (an error, or no
    answer within `timeout_s`), buckets in this process.

    Neither failing open (a Redis outage would lift every limit, at the moment an attacker may
    have caused it) nor failing closed (an outage of a cache would refuse every request). During
    an outage each API process enforces the limits on its own, so N processes allow up to N
    times the limit; the buckets start full. docs/security.md."""

    def __init__(self, shared: RedisRateLimiter, local: LocalRateLimiter, *, timeout_s: float = 0.5) -> None:
        self._shared = shared
        self._local = local
        self._timeout_s = timeout_s
        self._warned_at = -math.inf

    async def acquire(self, bucket: str, *, rate_per_s: float, burst: int, cost: int = 1) -> float:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._shared.acquire(bucket, rate_per_s=rate_per_s, burst=burst, cost=cost)
        except (RedisError, OSError, TimeoutError) as exc:
            self._falling_back(exc)
            return await self._local.acquire(bucket, rate_per_s=rate_per_s, burst=burst, cost=cost)

    async def acquire_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> list[float]:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._shared.acquire_all(buckets, cost=cost)
        except (RedisError, OSError, TimeoutError) as exc:
            self._falling_back(exc)
            return await self._local.acquire_all(buckets, cost=cost)

    def _falling_back(self, exc: BaseException) -> None:
        metrics.RATE_LIMIT_LOCAL.inc()
        now = time.monotonic()
        if now - self._warned_at > _WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "rate limits: Redis unavailable, using this process's buckets",
                extra={"error": type(exc).__name__},
            )
