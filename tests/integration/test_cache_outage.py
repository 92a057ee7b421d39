"""Caches are best effort: with Redis down after the record is written, createUpload with an
idempotency key never releases the key, so its retry gets the same media (one record, one quota
slot); listings read DynamoDB meanwhile. A private redis-own_redis: the shared one is never stopped."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.exceptions import RedisError

from infra.aws.resources import Resources
from infra.roots.runtime import Runtime, open_runtime
from infra.settings import Settings
from services.core.auth import Principal
from services.core.media import MediaStatus
from services.core.ports import ListFilter
from services.ingest.uploads import UploadRequest
from tests.conftest import isolated_settings
from tests.redis_process import RedisProcess

pytestmark = pytest.mark.integration
ALICE = Principal(user_id="alice")


@pytest.fixture
def settings(moto_endpoint: str, own_redis: RedisProcess) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, own_redis.url)


@pytest.fixture
async def runtime(settings: Settings, resources: Resources) -> AsyncIterator[Runtime]:
    async with open_runtime(settings, listen=False) as runtime:
        yield runtime


async def test_a_cache_failure_after_the_write_keeps_the_idempotency_key(
    runtime: Runtime, own_redis: RedisProcess
) -> None:
    request = UploadRequest(
        filename="a.jpg",
        content_type="image/jpeg",
        size=100,
        sha256=hashlib.sha256(b"a").hexdigest(),
        idempotency_key="retry-across-outage-1",
    )
    uploads = runtime.services.uploads
    own_redis.stop()
    first_id = None
    with contextlib.suppress(RedisError, OSError):
        first_id = (await uploads.create_upload(ALICE, request)).media.id
    # Listings do not need the cache.
    page = await runtime.repo.list_by_owner("alice", limit=10, after=None, filter=ListFilter())
    assert len(page.items) == 1
    own_redis.start()
    retried = await uploads.create_upload(ALICE, request)
    assert retried.replayed
    assert first_id in (None, retried.media.id)
    assert (await runtime.repo.count_by_status("alice")).get(MediaStatus.PENDING) == 1
