"""deleteAccount and exportMyData through the public API, against moto server and Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from infra.roots.runtime import Runtime
from services.core.media import MediaStatus
from tests.client import error_codes, gql
from tests.e2e.test_listing import seed

pytestmark = pytest.mark.e2e

EXPORT = "mutation { exportMyData { url expiresAt mediaCount } }"
DELETE_ACCOUNT = "mutation { deleteAccount { mediaDeleted likesRemoved } }"
DELETE = "mutation($id: ID!) { deleteMedia(id: $id) { status } }"
LIKE = "mutation($id: ID!) { likeMedia(id: $id) { mediaId } }"
MEDIA = "query($id: ID!) { media(id: $id) { likeCount } }"
MINE = "query { myMedia { totalCount } deletedMedia { totalCount } }"


async def test_export_holds_metadata_and_links_to_originals(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    alice = token("alice")
    photo = await seed(runtime, "alice", tags=("beach",))
    await runtime.clients.s3.put_object(Bucket=runtime.settings.bucket, Key=photo.object_key, Body=b"photo")
    pending = await seed(runtime, "alice", status=MediaStatus.PENDING)
    await seed(runtime, "bob")

    body = await gql(api, EXPORT, token=alice)
    assert "errors" not in body, body
    export = body["data"]["exportMyData"]
    assert export["mediaCount"] == 2
    assert datetime.fromisoformat(export["expiresAt"]) > datetime.now(UTC) + timedelta(hours=23)
    async with httpx.AsyncClient() as client:
        archive = json.loads((await client.get(export["url"])).content)
        by_id = {entry["id"]: entry for entry in archive["media"]}
        assert archive["user"] == "alice" and set(by_id) == {photo.id, pending.id}
        assert by_id[photo.id]["tags"] == ["beach"] and by_id[photo.id]["status"] == "COMPLETED"
        assert "object_key" not in by_id[photo.id]
        assert (await client.get(by_id[photo.id]["original_url"])).content == b"photo"
        assert by_id[pending.id]["original_url"] is None
    assert error_codes(await gql(api, EXPORT)) == ["UNAUTHENTICATED"]


async def test_delete_account_trashes_everything_and_takes_likes_back(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    alice, bob = token("alice"), token("bob")
    mine = [await seed(runtime, "alice") for _ in range(3)]
    assert "errors" not in await gql(api, DELETE, {"id": mine[0].id}, token=alice)
    theirs = await seed(runtime, "bob")
    assert "errors" not in await gql(api, LIKE, {"id": theirs.id}, token=alice)
    assert "errors" not in await gql(api, LIKE, {"id": mine[1].id}, token=bob)

    body = await gql(api, DELETE_ACCOUNT, token=alice)
    assert body["data"]["deleteAccount"] == {"mediaDeleted": 2, "likesRemoved": 1}
    assert (await gql(api, MEDIA, {"id": theirs.id}, token=bob))["data"]["media"]["likeCount"] == 0
    assert (await gql(api, MINE, token=alice))["data"] == {
        "myMedia": {"totalCount": 0},
        "deletedMedia": {"totalCount": 3},
    }
    # After the window, the purge takes them all, with the likes they had.
    assert await runtime.retention.purge_due(now=datetime.now(UTC) + timedelta(days=31)) == 3
    assert await runtime.repo.get_many([m.id for m in mine]) == {}
    assert await runtime.services.engagement.stats([mine[1].id]) == {}
