"""The mobile app's path, over real HTTP and WebSocket, against moto server and Redis:
token → createUpload → PUT to S3 → worker → uploadCompleted → media(id) COMPLETED."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from infra.aws.sqs_worker import SqsWorker
from infra.settings import Settings
from tests.client import WsClient, create_upload, error_codes, gql, put_upload
from tests.conftest import isolated_settings
from tests.media_files import jpeg_bytes, png_bytes
from tests.servers import listening

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(moto_endpoint: str, any_redis: tuple[str, bool]) -> Iterator[Settings]:
    """Every test of this module runs on one Redis, then on a Redis Cluster of three masters."""
    url, cluster = any_redis
    yield from isolated_settings(moto_endpoint, url, redis_cluster=cluster)


UPLOAD_COMPLETED = "subscription($id: ID) { uploadCompleted(mediaId: $id) { id mediaId status url } }"
MEDIA = "query($id: ID!) { media(id: $id) { id status url size title tags owner { id } } }"
MEDIA_EVENTS = "subscription { mediaEvents { eventId type occurredAt media { mediaId status } } }"


async def test_upload_is_announced_live_and_completed(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = jpeg_bytes(50_000)
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(UPLOAD_COMPLETED)
        await listening(api, "alice")  # registered before the bytes arrive
        payload = await create_upload(api, alice, data)
        assert payload["media"]["status"] == "PENDING"
        assert payload["media"]["owner"]["id"] == "alice"
        assert await put_upload(payload["upload"], data) == 200

        message = await ws.receive(timeout=20)
        assert message["type"] == "next" and message["id"] == op, message
        completed = message["payload"]["data"]["uploadCompleted"]
        assert completed["mediaId"] == payload["media"]["mediaId"]
        assert completed["status"] == "COMPLETED"
        assert completed["url"].startswith("http")

    body = await gql(api, MEDIA, {"id": payload["media"]["id"]}, token=alice)
    media = body["data"]["media"]
    assert media["status"] == "COMPLETED"
    assert media["size"] == len(data)
    assert media["tags"] == ["sunset"]


async def test_subscribing_after_completion_answers_at_once(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = jpeg_bytes()
    payload = await create_upload(api, alice, data)
    await put_upload(payload["upload"], data)
    media_id = payload["media"]["id"]
    for _ in range(100):
        body = await gql(api, MEDIA, {"id": media_id}, token=alice)
        if body["data"]["media"]["status"] == "COMPLETED":
            break
        await asyncio.sleep(0.1)
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(UPLOAD_COMPLETED, {"id": media_id})
        message = await ws.receive()
        assert (
            message["type"] == "next"
            and message["payload"]["data"]["uploadCompleted"]["status"] == "COMPLETED"
        )
        assert await ws.receive() == {"id": op, "type": "complete"}


async def test_bytes_other_than_declared_never_complete(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    declared = jpeg_bytes(10_000)
    cases = {
        "other bytes, same size": jpeg_bytes(10_000),
        "other size": declared + b"extra",
        "other type": png_bytes(10_000),
    }
    async with WsClient(api, alice) as ws:
        for label, sent in cases.items():
            payload = await create_upload(api, alice, declared)
            op = await ws.subscribe(UPLOAD_COMPLETED, {"id": payload["media"]["id"]})
            # moto accepts whatever reaches a presigned URL; the worker must catch it.
            await put_upload(payload["upload"], sent)
            message = await ws.receive(timeout=20)
            assert message["type"] == "next" and message["id"] == op, (label, message)
            assert message["payload"]["data"] is None, label
            assert error_codes(message["payload"]) == ["BAD_USER_INPUT"], label
            assert await ws.receive() == {"id": op, "type": "complete"}, label
            body = await gql(api, MEDIA, {"id": payload["media"]["id"]}, token=alice)
            assert body["data"]["media"]["status"] == "REJECTED", label
            assert body["data"]["media"]["url"] is None, label


async def test_another_user_sees_nothing(api: str, worker: SqsWorker, token: Callable[..., str]) -> None:
    alice, mallory = token("alice"), token("mallory")
    data = jpeg_bytes()
    async with WsClient(api, mallory) as spy:
        spy_op = await spy.subscribe(MEDIA_EVENTS)
        await spy.subscribe(UPLOAD_COMPLETED)
        async with WsClient(api, alice) as ws:
            await ws.subscribe(UPLOAD_COMPLETED)
            await listening(api, "alice")
            await listening(api, "mallory", 2)  # two operations: two bus subscriptions
            payload = await create_upload(api, alice, data)
            await put_upload(payload["upload"], data)
            assert (await ws.receive(timeout=20))["type"] == "next"
        await spy.expect_nothing(1.0)
        # Alice's id, used by Mallory, does not exist for Mallory.
        op = await spy.subscribe(UPLOAD_COMPLETED, {"id": payload["media"]["id"]})
        message = await spy.receive()
        assert message["id"] == op and error_codes(message["payload"]) == ["NOT_FOUND"], message
        assert spy_op != op
    body = await gql(api, MEDIA, {"id": payload["media"]["id"]}, token=mallory)
    assert body["data"]["media"] is None
    body = await gql(api, "{ myMedia { edges { node { id } } } }", token=mallory)
    assert body["data"]["myMedia"]["edges"] == []


async def test_media_events_reports_each_status_change(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = jpeg_bytes()
    async with WsClient(api, alice) as ws:
        await ws.subscribe(MEDIA_EVENTS)
        await listening(api, "alice")
        payload = await create_upload(api, alice, data)
        await put_upload(payload["upload"], data)
        created = (await ws.receive())["payload"]["data"]["mediaEvents"]
        processing = (await ws.receive(timeout=20))["payload"]["data"]["mediaEvents"]
        completed = (await ws.receive(timeout=20))["payload"]["data"]["mediaEvents"]
    assert [created["type"], processing["type"], completed["type"]] == ["CREATED", "PROCESSING", "COMPLETED"]
    assert created["media"]["mediaId"] == completed["media"]["mediaId"] == payload["media"]["mediaId"]
    assert created["eventId"] < processing["eventId"] < completed["eventId"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("size", 10 * 1024 * 1024 + 1), ("contentType", "application/x-msdownload"), ("sha256", "abc")],
)
async def test_refused_uploads_create_nothing(
    api: str, token: Callable[..., str], field: str, value: object
) -> None:
    alice = token("alice")
    variables = {
        "input": {
            "filename": "a.jpg",
            "contentType": "image/jpeg",
            "size": 10,
            "sha256": "a" * 64,
            field: value,
        }
    }
    body = await gql(
        api,
        "mutation($input: CreateUploadInput!) { createUpload(input: $input) { media { id } } }",
        variables,
        token=alice,
    )
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    listing = await gql(api, "{ myMedia { edges { node { id } } } }", token=alice)
    assert listing["data"]["myMedia"]["edges"] == []


async def test_tokens_are_required_and_checked(api: str, token: Callable[..., str]) -> None:
    anonymous = await gql(api, "{ myMedia { edges { cursor } } }")
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    forged = await gql(api, "{ myMedia { edges { cursor } } }", token=token("alice") + "x")
    assert forged["_status"] == 401 and error_codes(forged) == ["UNAUTHENTICATED"]
    expired = await gql(api, "{ myMedia { edges { cursor } } }", token=token("alice", ttl_s=-60))
    assert error_codes(expired) == ["UNAUTHENTICATED"]


async def test_websocket_without_a_valid_token_is_closed_4403(api: str, token: Callable[..., str]) -> None:
    for bad in (None, "not-a-jwt", token("alice", ttl_s=-60)):
        client = WsClient(api, bad, init=False)
        async with client:
            payload = {"Authorization": f"Bearer {bad}"} if bad else {}
            await client.send({"type": "connection_init", "payload": payload})
            assert client.ws is not None
            await client.ws.wait_closed()
            assert client.ws.close_code == 4403


async def test_health_and_readiness(api: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=api) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"dynamodb": "ok", "s3": "ok", "redis": "ok"}
