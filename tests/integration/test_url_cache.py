"""The Redis URL cache: many URLs in one round trip each way, and an owner's generation bump
hiding every URL cached before it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from ulid import ULID

from infra.redis.delivery import RedisUrlCache
from services.core.media import utcnow
from services.core.ports import CachedUrl

pytestmark = pytest.mark.integration


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[RedisUrlCache]:
    redis = Redis.from_url(redis_url)
    prefix = f"mgtest:{str(ULID()).lower()[-10:]}:"
    try:
        yield RedisUrlCache(redis, prefix)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_many_urls_are_read_and_written_together(cache: RedisUrlCache) -> None:
    expires = utcnow() + timedelta(minutes=5)
    await cache.put_many(
        [
            ("alice", "m1:1:a", CachedUrl("https://a", expires)),
            ("bob", "m2:1:b", CachedUrl("https://b", expires)),
        ]
    )
    found = await cache.get_many([("alice", "m1:1:a"), ("bob", "m2:1:b"), ("alice", "m3:1:c")])
    assert [hit.url if hit else None for hit in found] == ["https://a", "https://b", None]
    assert found[0] is not None and abs((found[0].expires_at - expires).total_seconds()) < 1

    await cache.forget_owner("alice")
    found = await cache.get_many([("alice", "m1:1:a"), ("bob", "m2:1:b")])
    assert [hit.url if hit else None for hit in found] == [None, "https://b"]
    assert await cache.get_many([]) == []
