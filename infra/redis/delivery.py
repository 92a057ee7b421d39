"""Redis adapters of delivery: the URL cache and the view recorder."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from redis.asyncio import Redis

from infra.observability.metrics import record_cache
from services.core.ports import CachedUrl

# Dedupe the viewer within the window, count, and log (bounded): one atomic step.
_RECORD_VIEW = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then
  return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
return 1
"""

# Take every pending count at once: a view recorded during the flush lands in the new hash.
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
redis.call('RENAME', KEYS[1], KEYS[2])
local counts = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
return counts
"""


class RedisUrlCache:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, owner_id: str, key: str) -> CachedUrl | None:
        generation = await self._redis.get(f"{self._prefix}urlgen:{owner_id}") or b"0"
        raw = await self._redis.get(f"{self._prefix}url:{owner_id}:{_text(generation)}:{key}")
        record_cache("url", hit=raw is not None)
        if raw is None:
            return None
        data = json.loads(raw)
        return CachedUrl(data["url"], datetime.fromisoformat(data["expires_at"]))

    async def put(self, owner_id: str, key: str, url: CachedUrl) -> None:
        generation = await self._redis.get(f"{self._prefix}urlgen:{owner_id}") or b"0"
        ttl = max(1, int((url.expires_at - datetime.now(UTC)).total_seconds()))
        value = json.dumps({"url": url.url, "expires_at": url.expires_at.isoformat()})
        await self._redis.set(f"{self._prefix}url:{owner_id}:{_text(generation)}:{key}", value, ex=ttl)

    async def forget_owner(self, owner_id: str) -> None:
        await self._redis.incr(f"{self._prefix}urlgen:{owner_id}")


class RedisViewRecorder:
    def __init__(self, redis: Redis, prefix: str, *, log_length: int = 1000) -> None:
        self._redis = redis
        self._prefix = prefix
        self._log_length = log_length
        self._record = redis.register_script(_RECORD_VIEW)
        self._take = redis.register_script(_TAKE)

    async def record(self, media_id: str, viewer_id: str, at: datetime, *, window_s: int) -> bool:
        entry = json.dumps([viewer_id, at.isoformat()])
        counted = await self._record(
            keys=[
                f"{self._prefix}viewed:{media_id}:{viewer_id}",
                f"{self._prefix}views:pending",
                f"{self._prefix}viewlog:{media_id}",
            ],
            args=[window_s, media_id, entry, self._log_length],
        )
        return bool(counted)

    async def pending(self, media_ids: list[str]) -> dict[str, int]:
        if not media_ids:
            return {}
        values = await self._redis.hmget(f"{self._prefix}views:pending", media_ids)
        return {media_id: int(value) for media_id, value in zip(media_ids, values, strict=True) if value}

    async def take_pending(self) -> dict[str, int]:
        flat = await self._take(keys=[f"{self._prefix}views:pending", f"{self._prefix}views:flushing"])
        return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def log(self, media_id: str, *, offset: int, limit: int) -> tuple[list[tuple[str, datetime]], bool]:
        raw = await self._redis.lrange(f"{self._prefix}viewlog:{media_id}", offset, offset + limit)
        entries = [json.loads(item) for item in raw]
        views = [(viewer, datetime.fromisoformat(at)) for viewer, at in entries[:limit]]
        return views, len(entries) > limit


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
