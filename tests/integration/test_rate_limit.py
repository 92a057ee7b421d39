"""RedisRateLimiter against a real Redis: the Lua bucket is atomic under concurrency and refills;
while Redis is unreachable or silent, the process's own buckets limit instead."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from infra.aws.embedded import free_port
from infra.redis.rate_limit import FallbackRateLimiter, LocalRateLimiter, RedisRateLimiter
from infra.roots.runtime import Runtime
from services.core.ports import Bucket
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


class ScriptCalls:
    """Counts the script calls `limiter` makes from now on."""

    def __init__(self, limiter: RedisRateLimiter) -> None:
        self.count = 0
        script = limiter._script

        async def counted(**kwargs: object) -> object:
            self.count += 1
            return await script(**kwargs)

        limiter._script = counted


async def test_charges_made_together_go_in_one_call_and_each_gets_its_own_answer(runtime: Runtime) -> None:
    limiter = RedisRateLimiter(runtime.redis, prefix=runtime.settings.redis_prefix)
    calls = ScriptCalls(limiter)
    slow, fast = Bucket("user:together-slow", 0.01, 5), Bucket("ip:192.0.2.77", 0.01, 100)
    answers = await asyncio.gather(
        *(limiter.acquire_all([slow, fast], cost=2) for _ in range(4)),
        limiter.acquire_all([Bucket("user:together-other", 0.01, 1)], cost=1),
    )
    assert calls.count == 1  # five requests' charges, one round trip
    # The user's bucket (5 tokens) grants two charges of 2 and refuses the next two, in order;
    # the address's bucket grants all four; the other user's bucket is its own.
    assert [slow_wait == 0 for slow_wait, _ in answers[:4]] == [True, True, False, False]
    assert all(fast_wait == 0 for _, fast_wait in answers[:4])
    assert answers[4] == [0]


async def test_a_crowded_turn_is_split_so_no_one_script_holds_redis_for_long(runtime: Runtime) -> None:
    limiter = RedisRateLimiter(runtime.redis, prefix=runtime.settings.redis_prefix)
    calls = ScriptCalls(limiter)
    waits = await asyncio.gather(
        *(limiter.acquire(f"user:crowd-{n}", rate_per_s=0.01, burst=1) for n in range(300))
    )
    assert waits == [0] * 300
    assert calls.count == 2  # 256 charges, then the other 44


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


async def test_while_redis_is_unreachable_the_process_keeps_the_buckets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on the port: every call to Redis fails at once.
    redis = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    limiter = FallbackRateLimiter(RedisRateLimiter(redis, prefix="t:"), LocalRateLimiter())
    try:
        waits = [await limiter.acquire("ip:198.51.100.9", rate_per_s=0.01, burst=2) for _ in range(3)]
    finally:
        await redis.aclose()
    assert waits[:2] == [0, 0] and waits[2] > 90  # limited, not open, not closed
    warnings = [r for r in caplog.records if r.name == "mediagraph.rate_limit"]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"  # once, not per request


async def test_a_redis_that_does_not_answer_falls_back_after_the_timeout() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes away

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = Redis(host="127.0.0.1", port=port)
    limiter = FallbackRateLimiter(RedisRateLimiter(redis, prefix="t:"), LocalRateLimiter(), timeout_s=0.2)
    try:
        assert await limiter.acquire("user:u", rate_per_s=0.01, burst=1) == 0
        assert await limiter.acquire("user:u", rate_per_s=0.01, burst=1) > 90
    finally:
        await redis.aclose()
        server.close()
