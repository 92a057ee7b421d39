"""CachedMediaRepository: hot listing pages from Redis, invalidated by every write.

Each listing belongs to a scope (an owner's timeline, a tag, the public timeline). A page is
stored under `{pc:<scope>}:page:<generation>:<arguments>`, in the slot of its scope's generation
(infra/redis/keys.py); every write through this repository
increments the generation of each scope the old and the new record belong to, so the next read
of any of them misses and re-reads DynamoDB. Nothing is deleted by pattern; stale generations
expire on their TTL. Timeline of a write, and why no reader sees its change missing once the
mutation has returned:

    t0  write to DynamoDB        (readers may still get the old page from generation g)
    t1  INCR generation → g+1    (the mutation returns after this)
    t2  any read uses g+1: miss → DynamoDB → the new state

A reader that fetched the old state before t0 and stores it after t1 stores it under g: unused.
Pages are viewer-independent (visibility is applied after the read), so one entry serves all.
Reading a page costs one round trip: a Lua script reads the generation and the page together.

The cache is best effort. A write has committed once DynamoDB took it: a failed invalidation
(Redis down) is logged and counted, never raised, so the mutation still succeeds and an
idempotency key is never given back for a record that exists. What it costs is staleness, and
that is bounded: a page built before the write lives at most `ttl_s` (page_cache_ttl_s, 60 s by
default) after it was stored. A failed cache read or store reads DynamoDB instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError

from infra.observability import metrics
from infra.observability.metrics import record_cache
from infra.redis.client import RedisClient
from infra.redis.keys import RedisKeys
from services.core.events import MediaEvent
from services.core.media import Media, MediaStatus, Visibility
from services.core.ports import ListFilter, MediaRepository, Page, Quota, Usage

log = logging.getLogger("mediagraph.cache")
_UNREACHABLE = (RedisError, OSError)

_READ = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])}
"""


def _scopes(media: Media) -> set[str]:
    return {
        f"owner:{media.owner_id}",
        f"public:{media.visibility.value}",
        *(f"tag:{tag}" for tag in media.tags),
    }


class CachedMediaRepository:
    def __init__(self, inner: MediaRepository, redis: RedisClient, *, prefix: str, ttl_s: int = 60) -> None:
        self._inner = inner
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._ttl_s = ttl_s
        self._read = redis.register_script(_READ)

    # --- listings: cached ---

    async def list_by_owner(
        self, owner_id: str, *, limit: int, after: str | None, filter: ListFilter
    ) -> Page:
        return await self._cached(
            f"owner:{owner_id}",
            [limit, after, str(filter)],
            lambda: self._inner.list_by_owner(owner_id, limit=limit, after=after, filter=filter),
        )

    async def list_by_tag(self, tag: str, *, limit: int, after: str | None) -> Page:
        return await self._cached(
            f"tag:{tag}", [limit, after], lambda: self._inner.list_by_tag(tag, limit=limit, after=after)
        )

    async def list_completed(self, visibility: Visibility, *, limit: int, after: str | None) -> Page:
        return await self._cached(
            f"public:{visibility.value}",
            [limit, after],
            lambda: self._inner.list_completed(visibility, limit=limit, after=after),
        )

    async def _cached(self, scope: str, arguments: list[Any], read: Any) -> Page:
        digest = hashlib.sha256(json.dumps(arguments).encode()).hexdigest()[:32]
        generation_key = self._keys.page_generation(scope)
        page_prefix = self._keys.page_prefix(scope)
        try:
            generation, cached = await self._read(keys=[generation_key], args=[page_prefix, digest])
        except _UNREACHABLE as exc:
            log.warning("page cache unreachable; reading DynamoDB", extra={"error": repr(exc)})
            record_cache("page", hit=False)
            page: Page = await read()
            return page
        if cached is not None:
            record_cache("page", hit=True)
            data = json.loads(cached)
            items = [Media.from_record(record) for record in data["items"]]
            return Page(items, data["has_more"], data["last_position"])
        record_cache("page", hit=False)
        page = await read()
        value = {
            "items": [media.to_record() for media in page.items],
            "has_more": page.has_more,
            "last_position": page.last_position,
        }
        key = f"{page_prefix}{_text(generation)}:{digest}"
        try:
            await self._redis.set(key, json.dumps(value, separators=(",", ":")), ex=self._ttl_s)
        except _UNREACHABLE as exc:
            log.warning("page not cached", extra={"error": repr(exc)})
        return page

    async def _invalidate(self, *media: Media | None) -> None:
        """Best effort, after the write committed: see the module's note on staleness."""
        scopes = set().union(*(_scopes(m) for m in media if m is not None))
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for scope in sorted(scopes):
                    key = self._keys.page_generation(scope)
                    pipe.incr(key)
                    pipe.expire(key, 24 * 3600)  # generations outlive every page built on them
                await pipe.execute()
        except _UNREACHABLE as exc:
            metrics.CACHE_INVALIDATION_FAILURES.inc()
            log.warning(
                "page cache not invalidated; pages may be stale for up to the page TTL",
                extra={"error": repr(exc), "ttl_s": self._ttl_s},
            )

    # --- writes: through, then invalidate ---

    async def create(
        self, media: Media, *, events: Sequence[MediaEvent] = (), quota: Quota | None = None
    ) -> None:
        await self._inner.create(media, events=events, quota=quota)
        await self._invalidate(media)

    async def save(
        self,
        media: Media,
        *,
        expected_version: int,
        previous: Media | None = None,
        events: Sequence[MediaEvent] = (),
    ) -> None:
        if previous is None or previous.version != expected_version:
            previous = await self._inner.get(media.id)
        await self._inner.save(media, expected_version=expected_version, previous=previous, events=events)
        await self._invalidate(previous, media)

    async def delete(self, media: Media, *, events: Sequence[MediaEvent] = ()) -> None:
        await self._inner.delete(media, events=events)
        await self._invalidate(media)

    # --- the rest: straight through (records are read consistently, never cached) ---

    async def get(self, media_id: str) -> Media | None:
        return await self._inner.get(media_id)

    async def get_many(self, media_ids: list[str]) -> dict[str, Media]:
        return await self._inner.get_many(media_ids)

    async def find_completed_by_sha256(self, owner_id: str, sha256: str) -> Media | None:
        return await self._inner.find_completed_by_sha256(owner_id, sha256)

    async def count_by_status(self, owner_id: str) -> dict[MediaStatus, int]:
        return await self._inner.count_by_status(owner_id)

    async def completed_hashes(self, owner_id: str, *, limit: int) -> list[tuple[str, str]]:
        # Not cached: the worker reads them beside each upload of the owner, whose every save
        # drops the owner's cached pages anyway.
        return await self._inner.completed_hashes(owner_id, limit=limit)

    async def oldest_with_status(self, status: MediaStatus, *, limit: int) -> list[Media]:
        return await self._inner.oldest_with_status(status, limit=limit)

    async def owner_usage(self, owner_id: str, status: MediaStatus, *, now: datetime) -> Usage:
        return await self._inner.owner_usage(owner_id, status, now=now)

    async def scan(self, *, limit: int, after: str | None) -> Page:
        return await self._inner.scan(limit=limit, after=after)

    def position_of(self, media: Media) -> str:
        return self._inner.position_of(media)

    async def ping(self) -> None:
        await self._inner.ping()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
