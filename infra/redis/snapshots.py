"""RedisSnapshotStore: ranked feed orders kept for a while, so paging stays consistent."""

from __future__ import annotations

import json

from redis.asyncio import Redis
from ulid import ULID


class RedisSnapshotStore:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def save(self, media_ids: list[str], ttl_s: int) -> str:
        snapshot_id = str(ULID())
        await self._redis.set(f"{self._prefix}feed:{snapshot_id}", json.dumps(media_ids), ex=ttl_s)
        return snapshot_id

    async def load(self, snapshot_id: str) -> list[str] | None:
        raw = await self._redis.get(f"{self._prefix}feed:{snapshot_id}")
        if raw is None:
            return None
        ids: list[str] = json.loads(raw)
        return ids
