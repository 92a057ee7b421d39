"""RedisRateLimiter against a real Redis: the Lua bucket is atomic under concurrency and refills."""

from __future__ import annotations

import asyncio

import pytest

from infra.redis.rate_limit import RedisRateLimiter
from infra.roots.runtime import Runtime
from tests.servers import eventually

pytestmark = pytest.mark.integration


async def test_concurrent_requests_never_overdraw_the_bucket(runtime: Runtime) -> None:
    limiter = RedisRateLimiter(runtime.redis, prefix=runtime.settings.redis_prefix)
    waits = await asyncio.gather(
        *(limiter.acquire("user:race", rate_per_s=0.01, burst=10) for _ in range(40))
    )
    assert sum(1 for wait in waits if wait == 0) == 10
    refused = [wait for wait in waits if wait > 0]
    assert len(refused) == 30 and min(refused) > 90  # 0.01 tokens/s: about 100 s for the next one


async def test_bucket_refills_at_its_rate(runtime: Runtime) -> None:
    limiter = RedisRateLimiter(runtime.redis, prefix=runtime.settings.redis_prefix)
    assert await limiter.acquire("ip:192.0.2.1", rate_per_s=20, burst=1) == 0
    wait = await limiter.acquire("ip:192.0.2.1", rate_per_s=20, burst=1)
    assert 0 < wait <= 0.05

    async def granted() -> bool:  # a refused acquire takes nothing: asking again is harmless
        return await limiter.acquire("ip:192.0.2.1", rate_per_s=20, burst=1) == 0

    await eventually(granted, timeout=5)
    # Buckets are separate, and expire on their own (no key left behind forever).
    assert await limiter.acquire("ip:192.0.2.2", rate_per_s=20, burst=1) == 0
    ttl = await runtime.redis.pttl(f"{runtime.settings.redis_prefix}rl:ip:192.0.2.1")
    assert 0 < ttl <= 1050
