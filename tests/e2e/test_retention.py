"""Delete and restore through the public API, against moto server and Redis: deleted media is
gone from every path and URL at once, the trash shows it, restore brings everything back as
it was, and the audit log records each step for the owner (and admins) only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.aws.sqs_worker import SqsWorker
from infra.roots.runtime import Runtime
from services.core.media import MediaStatus, Visibility
from tests.client import WsClient, create_upload, error_codes, gql, put_upload
from tests.e2e.test_listing import seed
from tests.media_files import jpeg_bytes
from tests.servers import listening

pytestmark = pytest.mark.e2e

MEDIA = "query($id: ID!) { media(id: $id) { mediaId status url likeCount title visibility } }"
MY_MEDIA = """query($status: MediaStatus) { myMedia(first: 50, filter: {status: $status}) {
  totalCount edges { node { mediaId } } } }"""
USER_MEDIA = 'query { userMedia(userId: "alice", first: 50) { edges { node { mediaId } } } }'
BY_TAG = 'query { mediaByTag(tag: "beach", first: 50) { edges { node { mediaId } } } }'
FEED = """query($ranking: FeedRanking) { feed(first: 50, ranking: $ranking) {
  edges { node { mediaId } } } }"""
DELETE = """mutation($id: ID!) { deleteMedia(id: $id) {
  mediaId status deletedAt deletedBy purgeAfter url } }"""
RESTORE = "mutation($id: ID!) { restoreMedia(id: $id) { mediaId status deletedAt purgeAfter url } }"
TRASH = """query($first: Int, $after: String) { deletedMedia(first: $first, after: $after) {
  totalCount edges { node { mediaId status purgeAfter deletedBy } } pageInfo { hasNextPage endCursor } } }"""
LIKE = "mutation($id: ID!) { likeMedia(id: $id) { mediaId } }"
AUDIT = """query($id: ID!, $first: Int, $after: String) {
  mediaAuditLog(id: $id, first: $first, after: $after) {
  edges { cursor node { actor action at changes { field before after } } } pageInfo { hasNextPage } } }"""
UPDATE = """mutation($id: ID!, $input: UpdateMediaInput!) { updateMedia(id: $id, input: $input) {
  mediaId title } }"""
EVENTS = "subscription { mediaEvents { type media { mediaId status } } }"


async def everything_seen(api: str, alice: str, bob: str, media_id: str) -> dict[str, Any]:
    """What each read path shows of `media_id` (and the counters), as alice and as bob."""

    async def ids(query: str, field: str, tok: str, variables: dict[str, Any] | None = None) -> bool:
        body = await gql(api, query, variables, token=tok)
        assert "errors" not in body, body
        return media_id in [edge["node"]["mediaId"] for edge in body["data"][field]["edges"]]

    mine = await gql(api, MY_MEDIA, token=alice)
    completed = await gql(api, MY_MEDIA, {"status": "COMPLETED"}, token=alice)
    as_owner = (await gql(api, MEDIA, {"id": media_id}, token=alice))["data"]["media"]
    as_bob = (await gql(api, MEDIA, {"id": media_id}, token=bob))["data"]["media"]
    return {
        "media (owner)": as_owner is not None,
        "media (other)": as_bob is not None,
        "url (owner)": bool(as_owner and as_owner["url"]),
        "url (other)": bool(as_bob and as_bob["url"]),
        "likeCount": as_owner["likeCount"] if as_owner else None,
        "myMedia": await ids(MY_MEDIA, "myMedia", alice),
        "myMedia total": mine["data"]["myMedia"]["totalCount"],
        "myMedia COMPLETED total": completed["data"]["myMedia"]["totalCount"],
        "userMedia": await ids(USER_MEDIA, "userMedia", bob),
        "mediaByTag (owner)": await ids(BY_TAG, "mediaByTag", alice),
        "mediaByTag (other)": await ids(BY_TAG, "mediaByTag", bob),
        "feed RECENT": await ids(FEED, "feed", bob, {"ranking": "RECENT"}),
        "feed POPULAR": await ids(FEED, "feed", bob, {"ranking": "POPULAR"}),
    }


async def test_delete_hides_everywhere_and_restore_brings_all_back(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    alice, bob = token("alice"), token("bob")
    await seed(runtime, "alice", tags=("beach",), age=timedelta(hours=1))
    media = await seed(runtime, "alice", tags=("beach",))
    assert "errors" not in await gql(api, LIKE, {"id": media.id}, token=bob)
    before = await everything_seen(api, alice, bob, media.id)
    assert before == {
        "media (owner)": True,
        "media (other)": True,
        "url (owner)": True,
        "url (other)": True,
        "likeCount": 1,
        "myMedia": True,
        "myMedia total": 2,
        "myMedia COMPLETED total": 2,
        "userMedia": True,
        "mediaByTag (owner)": True,
        "mediaByTag (other)": True,
        "feed RECENT": True,
        "feed POPULAR": True,
    }

    async with WsClient(api, alice) as ws:
        await ws.subscribe(EVENTS)
        await listening(api, "alice")
        # Nobody but the owner (or an admin) deletes; to bob it does not exist.
        assert error_codes(await gql(api, DELETE, {"id": media.id}, token=bob)) == ["NOT_FOUND"]
        body = await gql(api, DELETE, {"id": media.id}, token=alice)
        assert "errors" not in body, body
        deleted = body["data"]["deleteMedia"]
        assert deleted["status"] == "DELETED" and deleted["deletedBy"] == "alice" and deleted["url"] is None
        deleted_at = datetime.fromisoformat(deleted["deletedAt"])
        assert datetime.fromisoformat(deleted["purgeAfter"]) == deleted_at + timedelta(days=30)
        event = await ws.receive()
        assert event["payload"]["data"]["mediaEvents"] == {
            "type": "DELETED",
            "media": {"mediaId": media.id, "status": "DELETED"},
        }

        after_delete = await everything_seen(api, alice, bob, media.id)
        assert after_delete == {
            **{path: False for path in before},
            "likeCount": None,
            "myMedia total": 1,
            "myMedia COMPLETED total": 1,
        }
        assert error_codes(await gql(api, LIKE, {"id": media.id}, token=bob)) == ["NOT_FOUND"]
        assert error_codes(await gql(api, DELETE, {"id": media.id}, token=alice)) == ["NOT_FOUND"]
        trash = (await gql(api, TRASH, token=alice))["data"]["deletedMedia"]
        assert trash["totalCount"] == 1
        assert [edge["node"]["mediaId"] for edge in trash["edges"]] == [media.id]
        assert trash["edges"][0]["node"]["purgeAfter"] == deleted["purgeAfter"]
        assert (await gql(api, TRASH, token=bob))["data"]["deletedMedia"]["edges"] == []

        # Restoring is the owner's (or an admin's) too.
        assert error_codes(await gql(api, RESTORE, {"id": media.id}, token=bob)) == ["NOT_FOUND"]
        body = await gql(api, RESTORE, {"id": media.id}, token=alice)
        assert "errors" not in body, body
        restored = body["data"]["restoreMedia"]
        assert restored["status"] == "COMPLETED" and restored["deletedAt"] is None
        assert restored["purgeAfter"] is None and restored["url"]
        event = await ws.receive()
        assert event["payload"]["data"]["mediaEvents"] == {
            "type": "RESTORED",
            "media": {"mediaId": media.id, "status": "COMPLETED"},
        }

    assert await everything_seen(api, alice, bob, media.id) == before
    assert await runtime.repo.count_by_status("alice") == {MediaStatus.COMPLETED: 2}
    assert (await gql(api, TRASH, token=alice))["data"]["deletedMedia"] == {
        "totalCount": 0,
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }
    # Restoring what is not deleted is a conflict, not a no-op.
    assert error_codes(await gql(api, RESTORE, {"id": media.id}, token=alice)) == ["CONFLICT"]


async def test_delete_keeps_the_status_it_had_and_restore_brings_it_back(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    alice = token("alice")
    rejected = await seed(runtime, "alice", status=MediaStatus.REJECTED, visibility=Visibility.PRIVATE)
    assert "errors" not in await gql(api, DELETE, {"id": rejected.id}, token=alice)
    stored = await runtime.repo.get(rejected.id)
    assert stored is not None and stored.status_before_delete is MediaStatus.REJECTED
    body = await gql(api, RESTORE, {"id": rejected.id}, token=alice)
    assert body["data"]["restoreMedia"]["status"] == "REJECTED"
    assert await runtime.repo.count_by_status("alice") == {MediaStatus.REJECTED: 1}


async def test_admin_deletes_and_restores_anyones_media(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    media = await seed(runtime, "alice")
    admin = token("mod", roles=("admin",))
    body = await gql(api, DELETE, {"id": media.id}, token=admin)
    assert body["data"]["deleteMedia"]["deletedBy"] == "mod"
    # It lands in the owner's trash, not the admin's.
    trash = (await gql(api, TRASH, token=token("alice")))["data"]["deletedMedia"]
    assert [edge["node"]["deletedBy"] for edge in trash["edges"]] == ["mod"]
    assert (await gql(api, RESTORE, {"id": media.id}, token=admin))["data"]["restoreMedia"]["status"] == (
        "COMPLETED"
    )


async def test_trash_pages_with_signed_cursors(api: str, runtime: Runtime, token: Callable[..., str]) -> None:
    alice = token("alice")
    ids = []
    for age in range(5):
        media = await seed(runtime, "alice", age=timedelta(minutes=age))
        assert "errors" not in await gql(api, DELETE, {"id": media.id}, token=alice)
        ids.append(media.id)
    seen: list[str] = []
    after = None
    while True:
        page = (await gql(api, TRASH, {"first": 2, "after": after}, token=alice))["data"]["deletedMedia"]
        seen += [edge["node"]["mediaId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ids  # newest first
    # bob cannot replay alice's cursor.
    assert error_codes(await gql(api, TRASH, {"first": 2, "after": after}, token=token("bob"))) == [
        "BAD_USER_INPUT"
    ]


async def test_audit_log_records_every_step_for_owner_and_admins_only(
    api: str, runtime: Runtime, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice, bob = token("alice"), token("bob")
    data = jpeg_bytes(5000)
    payload = await create_upload(api, alice, data, visibility="PRIVATE")
    media_id = payload["media"]["mediaId"]
    assert await put_upload(payload["upload"], data) == 200
    for _ in range(200):
        current = await runtime.repo.get(media_id)
        if current is not None and current.status is MediaStatus.COMPLETED:
            break
        await asyncio.sleep(0.05)
    variables = {"id": media_id, "input": {"title": "Dusk", "tags": ["#beach"]}}
    assert "errors" not in await gql(api, UPDATE, variables, token=alice)
    variables = {"id": media_id, "input": {"visibility": "PUBLIC"}}
    assert "errors" not in await gql(api, UPDATE, variables, token=alice)
    assert "errors" not in await gql(api, DELETE, {"id": media_id}, token=alice)
    assert "errors" not in await gql(api, RESTORE, {"id": media_id}, token=alice)
    assert "errors" not in await gql(api, DELETE, {"id": media_id}, token=token("mod", roles=("admin",)))
    # Time passes: a purger whose clock is past the window purges it.
    assert await runtime.retention.purge_due(now=datetime.now(UTC) + timedelta(days=31)) == 1

    body = await gql(api, AUDIT, {"id": media_id}, token=alice)
    assert "errors" not in body, body
    entries = [edge["node"] for edge in body["data"]["mediaAuditLog"]["edges"]]
    steps = [(entry["action"], entry["actor"]) for entry in entries]
    assert steps == [
        ("CREATED", "alice"),
        ("COMPLETED", "system"),
        ("UPDATED", "alice"),
        ("VISIBILITY_CHANGED", "alice"),
        ("DELETED", "alice"),
        ("RESTORED", "alice"),
        ("DELETED", "mod"),
        ("PURGED", "system"),
    ]
    times = [datetime.fromisoformat(entry["at"]) for entry in entries]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    updated = {change["field"]: change for change in entries[2]["changes"]}
    assert updated["title"] == {"field": "title", "before": '"A photo"', "after": '"Dusk"'}
    assert updated["tags"]["before"] == '["sunset"]' and updated["tags"]["after"] == '["beach"]'
    assert entries[3]["changes"] == [{"field": "visibility", "before": '"PRIVATE"', "after": '"PUBLIC"'}]

    # Paging, and the same log for an admin; nothing of it for anyone else.
    first = (await gql(api, AUDIT, {"id": media_id, "first": 3}, token=alice))["data"]["mediaAuditLog"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await gql(api, AUDIT, {"id": media_id, "after": first["edges"][-1]["cursor"]}, token=alice)
    assert len(rest["data"]["mediaAuditLog"]["edges"]) == 5
    admin_view = await gql(api, AUDIT, {"id": media_id}, token=token("mod", roles=("admin",)))
    assert len(admin_view["data"]["mediaAuditLog"]["edges"]) == 8
    assert error_codes(await gql(api, AUDIT, {"id": media_id}, token=bob)) == ["NOT_FOUND"]
    cursor = first["edges"][-1]["cursor"]
    assert error_codes(await gql(api, AUDIT, {"id": media_id, "after": cursor}, token=bob)) == [
        "BAD_USER_INPUT"
    ]
    assert error_codes(await gql(api, AUDIT, {"id": media_id})) == ["UNAUTHENTICATED"]
