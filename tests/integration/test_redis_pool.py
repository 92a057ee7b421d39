"""The process's Redis pool queues a burst larger than itself instead of failing it: with
redis-py's default pool, concurrent page reads beyond 100 connections answered
INTERNAL_SERVER_ERROR (MaxConnectionsError)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from infra.redis.client import open_redis
from infra.redis.delivery import RedisViewRecorder
from infra.settings import RedisConfig

pytestmark = pytest.mark.integration


async def test_a_burst_beyond_the_pool_waits_for_free_connections(redis_url: str) -> None:
    redis = open_redis(RedisConfig(url=redis_url, prefix="mgtest:pool:", max_connections=4))
    try:
        empty = f"mgtest:pool:{uuid.uuid4().hex}"  # never written: each BLPOP holds its connection 50 ms
        replies = await asyncio.gather(*(redis.blpop([empty], timeout=0.05) for _ in range(24)))
        assert replies == [None] * 24
    finally:
        await redis.aclose()


async def test_a_burst_that_outwaits_the_pool_timeout_fails_like_an_unreachable_redis(redis_url: str) -> None:
    redis = open_redis(
        RedisConfig(url=redis_url, prefix="mgtest:pool:", max_connections=4, pool_timeout_s=0.05)
    )
    try:
        empty = f"mgtest:pool:{uuid.uuid4().hex}"
        replies = await asyncio.gather(
            *(redis.blpop([empty], timeout=0.5) for _ in range(8)), return_exceptions=True
        )
        assert replies.count(None) == 4
        assert all(isinstance(r, RedisConnectionError) for r in replies if r is not None)
    finally:
        await redis.aclose()


async def test_a_pages_pending_views_take_one_connection(redis_url: str) -> None:
    """50 media over all 16 view buckets are read through a pool of 4 at 20 pages at once."""
    prefix = f"mgtest:pool:{uuid.uuid4().hex}:"
    redis = open_redis(RedisConfig(url=redis_url, prefix=prefix, max_connections=4, pool_timeout_s=5))
    views = RedisViewRecorder(redis, prefix)
    ids = [f"m{n}" for n in range(50)]
    try:
        for media_id in ids[:10]:
            assert await views.record(media_id, "viewer", datetime.now(UTC), window_s=60)
        pages = await asyncio.gather(*(views.pending(ids) for _ in range(20)))
        assert all(page == {media_id: 1 for media_id in ids[:10]} for page in pages)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
