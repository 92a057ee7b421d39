"""IDOR sweep: every query, mutation and subscription of the schema (enumerated by introspection,
so new fields are covered), called by bob with alice's ids, returns nothing of alice's and
changes nothing of hers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ulid import ULID

from infra.aws.sqs_worker import SqsWorker
from infra.settings import Settings
from tests.client import WsClient, create_upload, error_codes, gql, put_upload
from tests.conftest import isolated_settings
from tests.media_files import jpeg_bytes
from tests.schema_walk import Filler, client_schema, operation, root_fields, text_of

pytestmark = pytest.mark.e2e

MEDIA = "query($id: ID!) { media(id: $id) { mediaId title status visibility likeCount } }"
TRASH = "{ deletedMedia { edges { node { mediaId title } } } }"


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_url, rate_limit_enabled=False)


def leaks(body: dict[str, Any] | list[Any], marker: str, ids: list[str]) -> list[str]:
    """Alice's titles anywhere, her ids in data (an error message may echo the id bob sent)."""
    found = [marker] if marker in text_of(body) else []
    data = text_of(body.get("data")) if isinstance(body, dict) else text_of(body)
    return found + [media_id for media_id in ids if media_id in data]


async def _completed(api: str, alice: str, title: str) -> dict[str, Any]:
    data = jpeg_bytes(3000)
    payload = await create_upload(api, alice, data, title=title, visibility="PRIVATE")
    assert await put_upload(payload["upload"], data) == 200
    for _ in range(200):
        body = await gql(api, MEDIA, {"id": payload["media"]["id"]}, token=alice)
        if body["data"]["media"]["status"] == "COMPLETED":
            break
        await asyncio.sleep(0.05)
    assert body["data"]["media"]["status"] == "COMPLETED", body
    media: dict[str, Any] = payload["media"]
    return media


async def test_no_root_field_gives_bob_anything_of_alices(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice, bob = token("alice"), token("bob")
    marker = f"alice-secret-{ULID()}"
    completed = await _completed(api, alice, marker + "-completed")
    pending = (await create_upload(api, alice, jpeg_bytes(2000), title=marker + "-pending"))["media"]
    deleted = await _completed(api, alice, marker + "-deleted")
    body = await gql(
        api, "mutation($id: ID!) { deleteMedia(id: $id) { status } }", {"id": deleted["id"]}, token=alice
    )
    assert body["data"]["deleteMedia"]["status"] == "DELETED", body
    ids = [m[key] for m in (completed, pending, deleted) for key in ("id", "mediaId")]

    schema = await client_schema(api, bob)
    fields = root_fields(schema)
    kinds = {kind for kind, _, _ in fields}
    assert kinds == {"query", "mutation", "subscription"}
    # Control: the same generated documents, run by alice, do show her media (the sweep's
    # documents select what would leak).
    own = Filler(media_id=completed["id"], user_id="alice")
    shown = set()
    for kind, name, field in fields:
        if kind == "query":
            body = await gql(api, operation(schema, kind, name, field, own), token=alice)
            if leaks(body, marker, ids):
                shown.add(name)
    assert {"media", "node", "myMedia", "userMedia", "mediaAuditLog"} <= shown, shown
    swept: list[str] = []
    for media in (completed, pending, deleted):
        for media_id in (media["id"], media["mediaId"]):
            filler = Filler(media_id=media_id, user_id="alice")
            async with WsClient(api, bob) as ws:
                for kind, name, field in fields:
                    document = operation(schema, kind, name, field, filler)
                    if kind == "subscription":
                        await ws.subscribe(document)
                        continue
                    body = await gql(api, document, token=bob)
                    assert body["_status"] == 200, (document, body)
                    assert leaks(body, marker, ids) == [], (document, body)
                    for error in body.get("errors") or []:
                        assert error["extensions"]["code"] != "INTERNAL_SERVER_ERROR", (document, body)
                    swept.append(name)
                # Alice changes her media: bob's subscriptions must not hear of it.
                await gql(
                    api,
                    "mutation($id: ID!) { updateMedia(id: $id, input: {title: $t}) { mediaId } }".replace(
                        "$t", '"' + marker + '-completed"'
                    ),
                    {"id": completed["id"]},
                    token=alice,
                )
                while True:
                    try:
                        message = await ws.receive(timeout=0.5)
                    except TimeoutError:
                        break
                    assert leaks(message.get("payload") or {}, marker, ids) == [], message
    # Every query and mutation was called.
    assert {name for kind, name, _ in fields if kind != "subscription"} <= set(swept)

    # Nothing of alice's changed.
    for media, status in ((completed, "COMPLETED"), (pending, "PENDING")):
        body = await gql(api, MEDIA, {"id": media["id"]}, token=alice)
        assert body["data"]["media"]["status"] == status, body
        assert body["data"]["media"]["visibility"] == "PRIVATE"
        assert body["data"]["media"]["likeCount"] == 0
        assert body["data"]["media"]["title"].startswith(marker)
    trash = await gql(api, TRASH, token=alice)
    assert [edge["node"]["mediaId"] for edge in trash["data"]["deletedMedia"]["edges"]] == [
        deleted["mediaId"]
    ]
    assert error_codes(await gql(api, MEDIA, {"id": completed["id"]}, token=bob)) in ([], ["NOT_FOUND"])
