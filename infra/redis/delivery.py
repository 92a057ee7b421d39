"""Redis adapters of delivery: the URL cache and the view recorder."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

from redis.exceptions import RedisError

from infra.observability.metrics import record_cache
from infra.redis.client import RedisClient
from infra.redis.keys import VIEW_BUCKETS, RedisKeys
from services.core.ports import CachedUrl

log = logging.getLogger("mediagraph.cache")

# Dedupe the viewer within the window, count, and log (bounded): one atomic step. The three keys
# share the slot of the media's view bucket (infra/redis/keys.py).
_RECORD_VIEW = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then
  return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
return 1
"""

# Take every pending count of one bucket at once: a view recorded during the flush lands in the
# new hash.
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
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)

    # Best effort: while Redis is unreachable every lookup misses (URLs are signed afresh) and
    # nothing is stored. A URL is valid until it expires whether cached or not, so a missed
    # forget_owner leaves nothing usable longer than url_ttl_s.
    async def get_many(self, entries: list[tuple[str, str]]) -> list[CachedUrl | None]:
        try:
            return await self._get_many(entries)
        except (RedisError, OSError) as exc:
            log.warning("url cache unreachable; signing afresh", extra={"error": repr(exc)})
            return [None] * len(entries)

    async def put_many(self, entries: list[tuple[str, str, CachedUrl]]) -> None:
        try:
            await self._put_many(entries)
        except (RedisError, OSError) as exc:
            log.warning("urls not cached", extra={"error": repr(exc)})

    async def _get_many(self, entries: list[tuple[str, str]]) -> list[CachedUrl | None]:
        # Pipelines of single-key commands (no MGET): each key may live on another cluster node.
        generations = await self._generations({owner_id for owner_id, _ in entries})
        async with self._redis.pipeline(transaction=False) as pipe:
            for owner_id, key in entries:
                pipe.get(self._key(owner_id, generations[owner_id], key))
            raws = await pipe.execute()
        found: list[CachedUrl | None] = []
        for raw in raws:
            record_cache("url", hit=raw is not None)
            if raw is None:
                found.append(None)
                continue
            data = json.loads(raw)
            found.append(CachedUrl(data["url"], datetime.fromisoformat(data["expires_at"])))
        return found

    async def _put_many(self, entries: list[tuple[str, str, CachedUrl]]) -> None:
        generations = await self._generations({owner_id for owner_id, _, _ in entries})
        now = datetime.now(UTC)
        async with self._redis.pipeline(transaction=False) as pipe:
            for owner_id, key, url in entries:
                ttl = max(1, int((url.expires_at - now).total_seconds()))
                value = json.dumps({"url": url.url, "expires_at": url.expires_at.isoformat()})
                pipe.set(self._key(owner_id, generations[owner_id], key), value, ex=ttl)
            await pipe.execute()

    async def _generations(self, owner_ids: set[str]) -> dict[str, str]:
        owners = sorted(owner_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for owner_id in owners:
                pipe.get(self._keys.url_generation(owner_id))
            values = await pipe.execute()
        return {
            owner: _text(value) if value is not None else "0"
            for owner, value in zip(owners, values, strict=True)
        }

    def _key(self, owner_id: str, generation: str, key: str) -> str:
        return self._keys.url(owner_id, generation, key)

    async def forget_owner(self, owner_id: str) -> None:
        try:
            await self._redis.incr(self._keys.url_generation(owner_id))
        except (RedisError, OSError) as exc:
            log.warning("cached urls not forgotten; they expire with the urls", extra={"error": repr(exc)})


class RedisViewRecorder:
    def __init__(self, redis: RedisClient, prefix: str, *, log_length: int = 1000) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._log_length = log_length
        self._record = redis.register_script(_RECORD_VIEW)
        self._take = redis.register_script(_TAKE)

    async def record(self, media_id: str, viewer_id: str, at: datetime, *, window_s: int) -> bool:
        entry = json.dumps([viewer_id, at.isoformat()])
        counted = await self._record(
            keys=[
                self._keys.viewed(media_id, viewer_id),
                self._keys.views_pending(self._keys.view_bucket(media_id)),
                self._keys.view_log(media_id),
            ],
            args=[window_s, media_id, entry, self._log_length],
        )
        return bool(counted)

    async def pending(self, media_ids: list[str]) -> dict[str, int]:
        if not media_ids:
            return {}
        by_bucket: dict[int, list[str]] = {}
        for media_id in dict.fromkeys(media_ids):
            by_bucket.setdefault(self._keys.view_bucket(media_id), []).append(media_id)
        buckets = sorted(by_bucket)
        # One pipeline: one connection and one round trip per node for the whole page, rather
        # than a connection per bucket (a 50-item page touches most of the 16).
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.hmget(self._keys.views_pending(bucket), by_bucket[bucket])
            replies = await pipe.execute()
        counts: dict[str, int] = {}
        for bucket, values in zip(buckets, replies, strict=True):
            for media_id, value in zip(by_bucket[bucket], values, strict=True):
                if value:
                    counts[media_id] = int(value)
        return counts

    async def take_pending(self) -> dict[str, int]:
        flats = await asyncio.gather(
            *(
                self._take(keys=[self._keys.views_pending(bucket), self._keys.views_flushing(bucket)])
                for bucket in range(VIEW_BUCKETS)
            )
        )
        return {_text(flat[i]): int(flat[i + 1]) for flat in flats for i in range(0, len(flat), 2)}

    async def log(self, media_id: str, *, offset: int, limit: int) -> tuple[list[tuple[str, datetime]], bool]:
        raw = await self._redis.lrange(self._keys.view_log(media_id), offset, offset + limit)
        entries = [json.loads(item) for item in raw]
        views = [(viewer, datetime.fromisoformat(at)) for viewer, at in entries[:limit]]
        return views, len(entries) > limit


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
