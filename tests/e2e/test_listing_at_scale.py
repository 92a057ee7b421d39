"""Walking 1,000 items page by page yields each exactly once, newest first, while new uploads
complete in the middle of the walk; totalCount stays exact through every transition."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from infra.aws.dynamo import to_item
from infra.roots.runtime import Runtime
from services.core.media import Media, MediaStatus, Visibility, utcnow
from tests.client import gql
from tests.fakes import make_media
from tests.media_files import jpeg_bytes

pytestmark = pytest.mark.e2e

PAGE = """query($after: String) {
  myMedia(first: 100, after: $after) {
    totalCount edges { node { mediaId } } pageInfo { hasNextPage endCursor } } }"""


async def _bulk_store(runtime: Runtime, media: list[Media]) -> None:
    """Seed fast: the production item layout in BatchWriteItem calls of 25, and the owner's
    counter set once (moto spends ~20-100 ms on each single transaction)."""
    table, client = runtime.settings.table, runtime.clients.dynamodb
    for start in range(0, len(media), 25):
        batch = [{"PutRequest": {"Item": to_item(m)}} for m in media[start : start + 25]]
        await client.batch_write_item(RequestItems={table: batch})
    await client.put_item(
        TableName=table,
        Item={
            "pk": {"S": f"OWNER#{media[0].owner_id}"},
            "sk": {"S": "COUNTS"},
            "c_COMPLETED": {"N": str(len(media))},
        },
    )


async def test_walking_a_thousand_items_sees_each_once(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    originals = [
        make_media(
            jpeg_bytes(64),
            owner_id="alice",
            status=MediaStatus.COMPLETED,
            created_at=start + timedelta(seconds=i),
        )
        for i in range(1000)
    ]
    await _bulk_store(runtime, originals)
    # Two uploads in flight, to be completed mid-walk.
    in_flight = [make_media(jpeg_bytes(64), owner_id="alice", visibility=Visibility.PUBLIC) for _ in range(2)]
    for media in in_flight:
        await runtime.repo.create(media)

    alice = token("alice")
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        body = await gql(api, PAGE, {"after": after}, token=alice)
        connection = body["data"]["myMedia"]
        seen += [edge["node"]["mediaId"] for edge in connection["edges"]]
        pages += 1
        if pages == 3:
            for media in in_flight:  # the worker completes them now: they sort before the cursor
                done = media.transition(MediaStatus.COMPLETED, utcnow())
                await runtime.repo.save(done, expected_version=media.version, previous=media)
            await runtime.repo.create(
                make_media(jpeg_bytes(64), owner_id="alice", status=MediaStatus.COMPLETED)
            )
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    walked_originals = [media_id for media_id in seen if media_id not in {m.id for m in in_flight}]
    assert walked_originals[-1000:] == [m.id for m in reversed(originals)]
    assert len(seen) == len(set(seen))
    assert pages == 11  # 1,002 items at page one, 100 a page; hasNextPage false on the last

    counts = await runtime.repo.count_by_status("alice")
    assert counts == {MediaStatus.COMPLETED: 1003}
    final = await gql(api, PAGE, {"after": None}, token=alice)
    assert final["data"]["myMedia"]["totalCount"] == 1003
