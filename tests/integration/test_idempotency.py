"""DynamoIdempotencyStore against moto: one holder per key, release, and expired keys reusable."""

from __future__ import annotations

import pytest

from infra.aws.idempotency import DynamoIdempotencyStore
from infra.roots.runtime import Runtime
from services.core.ports import IdempotencyClaim

pytestmark = pytest.mark.integration


async def test_first_claim_holds_the_key_until_released(runtime: Runtime) -> None:
    store = DynamoIdempotencyStore(runtime.clients.dynamodb, runtime.settings.table)
    first, second = IdempotencyClaim("M1", "f1"), IdempotencyClaim("M2", "f2")
    assert await store.claim("alice", "k-1", first, ttl_s=60) is None
    assert await store.claim("alice", "k-1", second, ttl_s=60) == first
    assert await store.claim("bob", "k-1", second, ttl_s=60) is None  # per user
    await store.release("alice", "k-1", second)  # not the holder: nothing happens
    assert await store.claim("alice", "k-1", second, ttl_s=60) == first
    await store.release("alice", "k-1", first)
    assert await store.claim("alice", "k-1", second, ttl_s=60) is None


async def test_an_expired_key_is_free_although_not_yet_deleted(runtime: Runtime) -> None:
    store = DynamoIdempotencyStore(runtime.clients.dynamodb, runtime.settings.table)
    old, new = IdempotencyClaim("M1", "f"), IdempotencyClaim("M2", "f")
    assert await store.claim("alice", "k-2", old, ttl_s=-5) is None  # already past its ttl
    assert await store.claim("alice", "k-2", new, ttl_s=60) is None
    assert await store.claim("alice", "k-2", old, ttl_s=60) == new
