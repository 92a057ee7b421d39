"""Large uploads over real HTTP against moto: a three-part multipart upload completed and then
COMPLETED by the worker, a resume after a crash, an abort that leaves nothing, and retried
createUploads with one idempotency key."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from infra.aws.clients import AwsClients
from infra.aws.sqs_worker import SqsWorker
from infra.settings import Settings
from tests.client import WsClient, error_codes, gql
from tests.conftest import isolated_settings
from tests.media_files import mp4_bytes

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
PART = 5 * MIB  # S3's minimum part size
CREATE = """
mutation($input: CreateUploadInput!) {
  createUpload(input: $input) {
    replayed
    media { id mediaId status size }
    upload { url }
    multipart { partSize partCount parts { partNumber upload { url method headers { name value } } } }
  }
}"""
PART_URLS = """
mutation($id: ID!, $parts: [PartInput!]!) {
  uploadPartUrls(mediaId: $id, parts: $parts) { partNumber upload { url method headers { name value } } }
}"""
PROGRESS = """
query($id: ID!) {
  uploadProgress(mediaId: $id) { partSize partCount missingParts uploadedParts { partNumber size etag } }
}"""
COMPLETE = """
mutation($id: ID!, $parts: [CompletedPartInput!]!) {
  completeUpload(mediaId: $id, parts: $parts) { status }
}"""
ABORT = "mutation($id: ID!) { abortUpload(mediaId: $id) }"
UPLOAD_COMPLETED = "subscription($id: ID) { uploadCompleted(mediaId: $id) { mediaId status size } }"
MEDIA = "query($id: ID!) { media(id: $id) { mediaId status } }"


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(
        moto_endpoint,
        redis_url,
        max_upload_bytes=64 * MIB,
        multipart_threshold_bytes=PART,
        multipart_part_bytes=PART,
    )


def declare(data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "input": {
            "filename": "trip.mp4",
            "contentType": "video/mp4",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            **extra,
        }
    }


def part_of(data: bytes, number: int) -> bytes:
    return data[(number - 1) * PART : number * PART]


async def create(api: str, token: str, data: bytes, **extra: Any) -> dict[str, Any]:
    body = await gql(api, CREATE, declare(data, **extra), token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["createUpload"]
    return payload


async def put_part(api: str, token: str, media_id: str, data: bytes, number: int) -> str:
    """Mint a checksum-signed URL for one part, PUT it, return S3's ETag."""
    chunk = part_of(data, number)
    sha = hashlib.sha256(chunk).hexdigest()
    body = await gql(
        api, PART_URLS, {"id": media_id, "parts": [{"partNumber": number, "sha256": sha}]}, token=token
    )
    assert "errors" not in body, body
    (minted,) = body["data"]["uploadPartUrls"]
    upload = minted["upload"]
    headers = {header["name"]: header["value"] for header in upload["headers"]}
    assert "x-amz-checksum-sha256" in headers  # the part's checksum is signed into the URL
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.request(upload["method"], upload["url"], content=chunk, headers=headers)
    assert response.status_code == 200, response.text
    etag: str = response.headers["etag"]
    return etag


async def complete(api: str, token: str, media_id: str, data: bytes, etags: dict[int, str]) -> dict[str, Any]:
    parts = [
        {"partNumber": n, "etag": etag, "sha256": hashlib.sha256(part_of(data, n)).hexdigest()}
        for n, etag in sorted(etags.items())
    ]
    return await gql(api, COMPLETE, {"id": media_id, "parts": parts}, token=token)


async def test_three_part_upload_completes_through_the_worker(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = mp4_bytes(2 * PART + MIB)  # parts of 5, 5 and 1 MiB
    payload = await create(api, alice, data)
    assert payload["upload"] is None
    plan = payload["multipart"]
    assert (plan["partSize"], plan["partCount"]) == (PART, 3)
    assert [part["partNumber"] for part in plan["parts"]] == [1, 2, 3]
    media_id = payload["media"]["id"]

    async with WsClient(api, alice) as ws:
        await ws.subscribe(UPLOAD_COMPLETED, {"id": media_id})
        etags = {n: await put_part(api, alice, media_id, data, n) for n in (1, 2, 3)}
        body = await complete(api, alice, media_id, data, etags)
        assert "errors" not in body, body
        assert body["data"]["completeUpload"]["status"] == "PENDING"  # the worker decides
        message = await ws.receive(timeout=30)
    assert message["type"] == "next", message
    done = message["payload"]["data"]["uploadCompleted"]
    assert done == {"mediaId": payload["media"]["mediaId"], "status": "COMPLETED", "size": len(data)}


async def test_completion_refuses_parts_that_do_not_match(
    api: str, aws: AwsClients, settings: Settings, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = mp4_bytes(PART + MIB)
    media_id = (await create(api, alice, data))["media"]["id"]
    etags = {n: await put_part(api, alice, media_id, data, n) for n in (1, 2)}

    wrong_etag = await complete(
        api, alice, media_id, data, {1: etags[1], 2: '"0123456789abcdef0123456789abcdef"'}
    )
    missing = await complete(api, alice, media_id, data, {1: etags[1]})
    assert error_codes(wrong_etag) == ["BAD_USER_INPUT"], wrong_etag
    assert error_codes(missing) == ["BAD_USER_INPUT"], missing
    listed = await aws.s3.list_objects_v2(Bucket=settings.bucket)
    assert listed.get("KeyCount", 0) == 0  # nothing was assembled
    assert "errors" not in await complete(api, alice, media_id, data, etags)


async def test_resume_sends_only_the_missing_parts(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = mp4_bytes(2 * PART + 1000)
    media_id = (await create(api, alice, data))["media"]["id"]
    for number in (1, 3):
        await put_part(api, alice, media_id, data, number)
    # The app crashes here and forgets everything but the media id.

    body = await gql(api, PROGRESS, {"id": media_id}, token=alice)
    progress = body["data"]["uploadProgress"]
    assert progress["missingParts"] == [2]
    assert [(p["partNumber"], p["size"]) for p in progress["uploadedParts"]] == [(1, PART), (3, 1000)]

    sent = {n: await put_part(api, alice, media_id, data, n) for n in progress["missingParts"]}
    assert list(sent) == [2]
    etags = {p["partNumber"]: p["etag"] for p in progress["uploadedParts"]} | sent
    assert "errors" not in await complete(api, alice, media_id, data, etags)
    for _ in range(200):
        status = (await gql(api, MEDIA, {"id": media_id}, token=alice))["data"]["media"]["status"]
        if status not in ("PENDING", "PROCESSING"):
            break
        await asyncio.sleep(0.1)
    assert status == "COMPLETED"


async def test_abort_leaves_nothing_behind(
    api: str, aws: AwsClients, settings: Settings, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = mp4_bytes(PART + 10)
    media_id = (await create(api, alice, data))["media"]["id"]
    await put_part(api, alice, media_id, data, 1)
    uploads = await aws.s3.list_multipart_uploads(Bucket=settings.bucket)
    assert len(uploads.get("Uploads", [])) == 1

    body = await gql(api, ABORT, {"id": media_id}, token=alice)
    assert body["data"] == {"abortUpload": True}, body

    uploads = await aws.s3.list_multipart_uploads(Bucket=settings.bucket)
    assert uploads.get("Uploads", []) == []
    listed = await aws.s3.list_objects_v2(Bucket=settings.bucket)
    assert listed.get("KeyCount", 0) == 0
    assert (await gql(api, MEDIA, {"id": media_id}, token=alice))["data"]["media"] is None
    mine = await gql(api, "{ myMedia { edges { node { id } } } }", token=alice)
    assert mine["data"]["myMedia"]["edges"] == []
    again = await gql(api, PROGRESS, {"id": media_id}, token=alice)
    assert error_codes(again) == ["NOT_FOUND"]


async def test_retried_create_with_one_key_creates_one_media(api: str, token: Callable[..., str]) -> None:
    alice = token("alice")
    small = mp4_bytes(10_000)
    key = "7f1e2a4c-retry-test"
    first = await create(api, alice, small, idempotencyKey=key)
    # The response was lost; the app retries, twice at once for good measure.
    retries = await asyncio.gather(*(create(api, alice, small, idempotencyKey=key) for _ in range(3)))
    assert {r["media"]["mediaId"] for r in retries} == {first["media"]["mediaId"]}
    assert first["replayed"] is False and all(r["replayed"] for r in retries)
    assert all(r["upload"]["url"] for r in retries)  # a fresh presigned PUT for the same media

    large = mp4_bytes(PART + 1)
    big_first = await create(api, alice, large, idempotencyKey="large-upload-key-1")
    big_retry = await create(api, alice, large, idempotencyKey="large-upload-key-1")
    assert big_retry["media"]["mediaId"] == big_first["media"]["mediaId"]
    assert big_retry["multipart"]["partCount"] == 2

    mine = await gql(api, "{ myMedia { edges { node { mediaId } } } }", token=alice)
    assert len(mine["data"]["myMedia"]["edges"]) == 2

    other = await gql(api, CREATE, declare(mp4_bytes(10_000), idempotencyKey=key), token=alice)
    assert error_codes(other) == ["BAD_USER_INPUT"], other  # same key, different bytes
    # Keys are per user: Bob's identical key is his own.
    bob = await create(api, token("bob"), small, idempotencyKey=key)
    assert bob["media"]["mediaId"] != first["media"]["mediaId"] and bob["replayed"] is False
