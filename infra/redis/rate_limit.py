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

# Token buckets, each refilled and charged `cost` in one call (one round trip per request on one
# Redis node). KEYS[i] bucket i; ARGV[1] cost, then rate (tokens/s) and burst (capacity) of each
# bucket in turn. Returns the wait of each in seconds (as strings: Lua numbers are truncated to
# integers in Redis replies), "0" when granted.
_BUCKETS_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local cost = tonumber(ARGV[1])
local waits = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
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


class RedisRateLimiter:
    def __init__(self, redis: RedisClient, *, prefix: str) -> None:
        self._keys = RedisKeys(prefix)
        self._script: Any = redis.register_script(_BUCKETS_SCRIPT)
        # A script's keys must share a hash slot on a cluster, and a user's and an address's
        # buckets do not: there each bucket is its own call (sent together).
        self._one_call = not is_cluster(redis)

    async def acquire(self, bucket: str, *, rate_per_s: float, burst: int, cost: int = 1) -> float:
        (wait,) = await self._script(keys=[self._keys.rate_bucket(bucket)], args=[cost, rate_per_s, burst])
        return _seconds(wait)

    async def acquire_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> list[float]:
        if not self._one_call or len(buckets) == 1:
            return list(
                await asyncio.gather(
                    *(
                        self.acquire(b.name, rate_per_s=b.rate_per_s, burst=b.burst, cost=cost)
                        for b in buckets
                    )
                )
            )
        args: list[float] = [cost]
        for bucket in buckets:
            args += [bucket.rate_per_s, bucket.burst]
        waits = await self._script(keys=[self._keys.rate_bucket(b.name) for b in buckets], args=args)
        return [_seconds(wait) for wait in waits]


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
