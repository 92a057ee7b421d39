"""The processing pipeline end to end: real files through createUpload, the presigned PUT,
moto's S3 → SQS notification, the worker, and back out through the API."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from infra.aws.sqs_worker import SqsWorker
from infra.roots.runtime import Runtime
from tests.client import create_upload, error_codes, gql, put_upload
from tests.media_files import EICAR, jpeg_with_gps, mp4, photo, png_bytes
from tests.media_files import resized as resized_copy

pytestmark = pytest.mark.e2e

MEDIA = """query($id: ID!) { media(id: $id) {
  mediaId status url title tags visibility width height blurhash rejectReason quarantineKind
  thumbnails { name width height contentType url }
  duplicateOf { mediaId }
} }"""


async def wait_status(api: str, token: str, media_id: str, *statuses: str) -> dict[str, Any]:
    for _ in range(200):
        body = await gql(api, MEDIA, {"id": media_id}, token=token)
        media: dict[str, Any] | None = body["data"]["media"]
        if media is not None and media["status"] in statuses:
            return media
        await asyncio.sleep(0.1)
    raise AssertionError(f"media {media_id} never reached {statuses}")


async def upload(api: str, token: str, data: bytes, **fields: Any) -> dict[str, Any]:
    payload = await create_upload(api, token, data, **fields)
    assert payload["upload"] is not None
    assert await put_upload(payload["upload"], data) == 200
    return payload


async def fetch(url: str) -> bytes:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content


async def test_gps_jpeg_is_served_only_as_variants_without_location(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = jpeg_with_gps(800, 600, orientation=6)
    payload = await upload(api, alice, data)

    media = await wait_status(api, alice, payload["media"]["id"], "COMPLETED")

    assert (media["width"], media["height"]) == (600, 800)
    assert media["blurhash"]
    assert [thumb["name"] for thumb in media["thumbnails"]] == ["thumb-small", "thumb-large"]
    served = [media["url"], *(thumb["url"] for thumb in media["thumbnails"])]
    assert all(f"derived/{media['mediaId']}/" in url for url in served)
    for url in served:
        body = await fetch(url)
        assert body != data
        image = Image.open(io.BytesIO(body))
        assert image.format == "WEBP"
        assert len(image.getexif()) == 0 and "exif" not in image.info
        assert image.height > image.width  # orientation applied


async def test_eicar_is_quarantined_moved_and_never_served(
    api: str, worker: SqsWorker, runtime: Runtime, token: Callable[..., str]
) -> None:
    alice = token("alice")
    payload = await upload(api, alice, EICAR, contentType="image/jpeg", visibility="PUBLIC")
    media_id = payload["media"]["mediaId"]

    media = await wait_status(api, alice, payload["media"]["id"], "QUARANTINED", "COMPLETED", "REJECTED")

    assert media["status"] == "QUARANTINED"
    assert media["quarantineKind"] == "malware"
    assert media["url"] is None
    assert (await gql(api, MEDIA, {"id": media_id}, token=token("bob")))["data"]["media"] is None
    s3, bucket = runtime.clients.s3, runtime.settings.bucket
    kept = await s3.get_object(Bucket=bucket, Key=f"quarantine/{media_id}")
    assert await kept["Body"].read() == EICAR
    listing = await s3.list_objects_v2(Bucket=bucket, Prefix=f"uploads/{media_id}")
    assert listing.get("KeyCount", 0) == 0


async def test_png_declared_as_jpeg_is_rejected(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    payload = await upload(api, alice, png_bytes(5000), contentType="image/jpeg")

    media = await wait_status(api, alice, payload["media"]["id"], "REJECTED", "COMPLETED")

    assert media["status"] == "REJECTED"
    assert media["rejectReason"] == "type mismatch: declared image/jpeg, content is image/png"


async def test_the_same_bytes_again_complete_instantly_without_an_upload(
    api: str, worker: SqsWorker, runtime: Runtime, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = photo(seed=11)
    first = await upload(api, alice, data, title="First", tags=["a"], visibility="PRIVATE")
    original = await wait_status(api, alice, first["media"]["id"], "COMPLETED")

    again = await create_upload(api, alice, data, title="Second", tags=["b"], visibility="PUBLIC")

    assert again["upload"] is None
    assert again["media"]["status"] == "COMPLETED"
    assert again["media"]["mediaId"] != original["mediaId"]
    media = (await gql(api, MEDIA, {"id": again["media"]["id"]}, token=alice))["data"]["media"]
    assert (media["title"], media["tags"], media["visibility"]) == ("Second", ["b"], "PUBLIC")
    assert media["duplicateOf"] == {"mediaId": original["mediaId"]}
    assert f"derived/{media['mediaId']}/display.webp" in media["url"]
    assert await fetch(media["url"]) == await fetch(original["url"])
    copied = await runtime.clients.s3.get_object(
        Bucket=runtime.settings.bucket, Key=f"uploads/{media['mediaId']}"
    )
    assert await copied["Body"].read() == data
    # Someone else's identical bytes are theirs to upload.
    bobs = await create_upload(api, token("bob"), data)
    assert bobs["upload"] is not None and bobs["media"]["status"] == "PENDING"


async def test_a_resized_copy_is_flagged_but_never_points_at_hidden_media(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice, bob = token("alice"), token("bob")
    data = photo(seed=12)
    first = await upload(api, alice, data, visibility="PRIVATE")
    original = await wait_status(api, alice, first["media"]["id"], "COMPLETED")
    copy = await upload(api, alice, resized_copy(data, 0.85), visibility="PUBLIC")

    mine = await wait_status(api, alice, copy["media"]["id"], "COMPLETED")
    assert mine["duplicateOf"] == {"mediaId": original["mediaId"]}
    # Bob may see the public copy, not the private original it resembles.
    seen_by_bob = (await gql(api, MEDIA, {"id": copy["media"]["id"]}, token=bob))["data"]["media"]
    assert seen_by_bob["status"] == "COMPLETED"
    assert seen_by_bob["duplicateOf"] is None


REPORT = "mutation($id: ID!, $reason: String!) { reportMedia(id: $id, reason: $reason) }"
REVIEW = """mutation($id: ID!, $decision: ReviewDecision!) {
  reviewMedia(id: $id, decision: $decision) { mediaId status quarantineKind }
}"""
QUEUE = "{ reviewQueue { mediaId status quarantineKind rejectReason url } }"


async def test_a_report_hides_media_until_an_admin_releases_it(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice, bob, admin = token("alice"), token("bob"), token("root", roles=("admin",))
    payload = await upload(api, alice, photo(seed=13), visibility="PUBLIC")
    media_id = payload["media"]["id"]
    await wait_status(api, alice, media_id, "COMPLETED")

    assert (await gql(api, REPORT, {"id": media_id, "reason": "spam"}, token=bob))["data"] == {
        "reportMedia": True
    }

    assert (await gql(api, MEDIA, {"id": media_id}, token=bob))["data"]["media"] is None
    queue = (await gql(api, QUEUE, token=admin))["data"]["reviewQueue"]
    assert [(item["mediaId"], item["quarantineKind"], item["url"]) for item in queue] == [
        (payload["media"]["mediaId"], "report", None)
    ]
    refused = await gql(api, REVIEW, {"id": media_id, "decision": "RELEASE"}, token=alice)
    assert error_codes(refused) == ["FORBIDDEN"]

    released = await gql(api, REVIEW, {"id": media_id, "decision": "RELEASE"}, token=admin)

    assert released["data"]["reviewMedia"]["status"] == "COMPLETED"
    assert (await gql(api, MEDIA, {"id": media_id}, token=bob))["data"]["media"]["status"] == "COMPLETED"


VIDEO = """query($id: ID!) { media(id: $id) {
  status url width height durationSeconds poster { name url width height } thumbnails { name }
} }"""


async def test_a_video_completes_with_duration_and_poster(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    payload = await upload(api, alice, mp4(seconds=2), contentType="video/mp4", filename="clip.mp4")
    await wait_status(api, alice, payload["media"]["id"], "COMPLETED", "REJECTED")

    media = (await gql(api, VIDEO, {"id": payload["media"]["id"]}, token=alice))["data"]["media"]

    assert media["status"] == "COMPLETED"
    assert (media["width"], media["height"], media["durationSeconds"]) == (320, 240, 2.0)
    assert f"uploads/{payload['media']['mediaId']}" in media["url"]
    assert media["poster"]["name"] == "poster"
    poster = Image.open(io.BytesIO(await fetch(media["poster"]["url"])))
    assert poster.format == "WEBP" and poster.size == (320, 240)
    assert [thumb["name"] for thumb in media["thumbnails"]] == ["thumb-small", "thumb-large"]
