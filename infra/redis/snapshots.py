"""RedisSnapshotStore: ranked feed orders kept for a while, so paging stays consistent."""

from __future__ import annotations

import json

from ulid import ULID

from infra.redis.client import RedisClient
from infra.redis.keys import RedisKeys


class RedisSnapshotStore:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)

    async def save(self, media_ids: list[str], ttl_s: int) -> str:
        snapshot_id = str(ULID())
        await self._redis.set(self._keys.feed_snapshot(snapshot_id), json.dumps(media_ids), ex=ttl_s)
        return snapshot_id

    async def load(self, snapshot_id: str) -> list[str] | None:
        raw = await self._redis.get(self._keys.feed_snapshot(snapshot_id))
        if raw is None:
            return None
        ids: list[str] = json.loads(raw)
        return ids
