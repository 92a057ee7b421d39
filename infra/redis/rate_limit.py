"""RedisRateLimiter: token buckets in Redis, refilled and spent by one Lua script (atomic, and
shared by every API process). The clock is Redis's own (`TIME`), so API hosts whose clocks
disagree still share one consistent bucket.

While Redis is unreachable the limiter lets requests through (fails open, logged and counted):
the API keeps serving reads and writes from DynamoDB through a Redis outage instead of answering
every request with an error. The limits protect against abuse over minutes; an outage of seconds
to minutes without them is the lesser harm."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from infra.observability import metrics
from infra.redis.client import RedisClient
from infra.redis.keys import RedisKeys

log = logging.getLogger("mediagraph.rate_limit")

# KEYS[1] bucket; ARGV rate (tokens/s), burst (capacity), cost. Returns the wait in seconds
# (as a string: Lua numbers are truncated to integers in Redis replies), "0" when granted.
_BUCKET_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    def __init__(self, redis: RedisClient, *, prefix: str) -> None:
        self._keys = RedisKeys(prefix)
        self._script: Any = redis.register_script(_BUCKET_SCRIPT)

    async def acquire(self, bucket: str, *, rate_per_s: float, burst: int, cost: int = 1) -> float:
        try:
            wait = await self._script(keys=[self._keys.rate_bucket(bucket)], args=[rate_per_s, burst, cost])
        except (RedisError, OSError) as exc:
            metrics.RATE_LIMIT_UNCHECKED.inc()
            log.warning("rate limit not checked: Redis unreachable", extra={"error": repr(exc)})
            return 0.0
        return float(wait.decode() if isinstance(wait, bytes) else wait)
