"""The Redis page cache: hot pages are served without DynamoDB, and every write through the
repository makes the next read see it."""

from __future__ import annotations

import pytest

from infra.aws.dynamo import to_item
from infra.observability.metrics import sample
from infra.roots.runtime import Runtime
from services.core.media import MediaStatus, Visibility, utcnow
from services.core.ports import ListFilter
from tests.fakes import make_media
from tests.media_files import jpeg_bytes

pytestmark = pytest.mark.integration


def _hits() -> float:
    return sample("mediagraph_cache_requests_total", {"cache": "page", "result": "hit"})


async def test_a_hot_page_is_served_from_redis(runtime: Runtime) -> None:
    first = make_media(
        jpeg_bytes(10), owner_id="alice", status=MediaStatus.COMPLETED, visibility=Visibility.PUBLIC
    )
    await runtime.repo.create(first)
    page = await runtime.repo.list_completed(Visibility.PUBLIC, limit=10, after=None)
    assert [m.id for m in page.items] == [first.id]

    # Written behind the cache's back (no invalidation): the cached page is what comes back.
    sneaked = make_media(
        jpeg_bytes(10), owner_id="bob", status=MediaStatus.COMPLETED, visibility=Visibility.PUBLIC
    )
    await runtime.clients.dynamodb.put_item(TableName=runtime.settings.table, Item=to_item(sneaked))
    hits = _hits()
    again = await runtime.repo.list_completed(Visibility.PUBLIC, limit=10, after=None)
    assert [m.id for m in again.items] == [first.id]
    assert _hits() == hits + 1

    # A write through the repository invalidates: the next read sees DynamoDB's state.
    third = make_media(
        jpeg_bytes(10), owner_id="carol", status=MediaStatus.COMPLETED, visibility=Visibility.PUBLIC
    )
    await runtime.repo.create(third)
    fresh = await runtime.repo.list_completed(Visibility.PUBLIC, limit=10, after=None)
    assert {m.id for m in fresh.items} == {first.id, sneaked.id, third.id}


async def test_every_scope_of_a_change_is_invalidated(runtime: Runtime) -> None:
    media = make_media(
        jpeg_bytes(10), owner_id="alice", status=MediaStatus.COMPLETED, visibility=Visibility.PUBLIC
    )
    media = media.edit(utcnow(), tags=("old",))
    await runtime.repo.create(media)
    # Warm every listing it appears in.
    assert (await runtime.repo.list_by_tag("old", limit=5, after=None)).items
    assert (await runtime.repo.list_by_owner("alice", limit=5, after=None, filter=ListFilter())).items
    assert (await runtime.repo.list_completed(Visibility.PUBLIC, limit=5, after=None)).items

    changed = media.edit(utcnow(), tags=("new",), visibility=Visibility.PRIVATE)
    await runtime.repo.save(changed, expected_version=media.version, previous=media)

    assert (await runtime.repo.list_by_tag("old", limit=5, after=None)).items == []
    assert [m.id for m in (await runtime.repo.list_by_tag("new", limit=5, after=None)).items] == [media.id]
    assert (await runtime.repo.list_completed(Visibility.PUBLIC, limit=5, after=None)).items == []
    mine = await runtime.repo.list_by_owner("alice", limit=5, after=None, filter=ListFilter())
    assert [m.visibility for m in mine.items] == [Visibility.PRIVATE]
