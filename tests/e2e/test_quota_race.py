"""Quotas under concurrency, against moto's DynamoDB: the reservation is one conditional write, so
concurrent createUploads cannot all pass a check made before any of them wrote; reservations are
released as uploads are aborted, processed or rejected.

The audit: 25 concurrent createUploads against a pending limit of 20 all succeeded, and 100 GiB
was declared against a 50 GiB quota."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.aws.sqs_worker import SqsWorker
from infra.settings import Settings
from tests.client import CREATE_UPLOAD, error_codes, gql, put_upload, upload_input
from tests.conftest import isolated_settings
from tests.media_files import jpeg_bytes
from tests.servers import eventually

pytestmark = pytest.mark.e2e

PENDING = 20
QUOTA_BYTES = 50_000_000  # 50 MB stands in for 50 GiB: the same arithmetic, smaller declarations
MINE = "{ myMedia(first: 100) { edges { node { mediaId status } } } }"


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(
        moto_endpoint,
        redis_url,
        quota_pending_uploads_per_user=PENDING,
        quota_bytes_per_user=QUOTA_BYTES,
        rate_limit_enabled=False,  # the quota, not the rate limit, must stop the burst
    )


async def create_all(api: str, token: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(
        await asyncio.gather(*(gql(api, CREATE_UPLOAD, {"input": item}, token=token) for item in inputs))
    )


def outcome(bodies: list[dict[str, Any]]) -> tuple[int, list[str]]:
    accepted = [body for body in bodies if "errors" not in body]
    refusals = [body["errors"][0]["extensions"].get("quota", "?") for body in bodies if "errors" in body]
    assert all(error_codes(body) == ["BAD_USER_INPUT"] for body in bodies if "errors" in body), bodies
    return len(accepted), refusals


async def mine(api: str, token: str) -> list[dict[str, Any]]:
    body = await gql(api, MINE, token=token)
    return [edge["node"] for edge in body["data"]["myMedia"]["edges"]]


async def test_concurrent_uploads_cannot_pass_the_pending_limit(api: str, token: Callable[..., str]) -> None:
    alice = token("alice")
    inputs = [upload_input(jpeg_bytes(1000 + n)) for n in range(PENDING + 5)]
    accepted, refusals = outcome(await create_all(api, alice, inputs))
    assert (accepted, refusals) == (PENDING, ["pendingUploads"] * 5)
    assert len(await mine(api, alice)) == PENDING  # nothing else was created


async def test_concurrent_declarations_cannot_pass_the_byte_quota(
    api: str, token: Callable[..., str]
) -> None:
    bob = token("bob")
    # 20 x 5 MB declared at once against 50 MB: exactly 10 fit.
    inputs = [upload_input(jpeg_bytes(1000 + n), size=5_000_000) for n in range(20)]
    accepted, refusals = outcome(await create_all(api, bob, inputs))
    assert (accepted, refusals) == (10, ["bytes"] * 10)
    # One byte more than what is left never fits, whoever asks first.
    refused = await gql(api, CREATE_UPLOAD, {"input": upload_input(jpeg_bytes(999), size=1)}, token=bob)
    assert refused["errors"][0]["extensions"]["quota"] == "bytes"


async def test_reservations_are_released_by_abort_completion_and_rejection(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    carol = token("carol")
    good, bad = jpeg_bytes(3000), b"not an image at all, whatever it says" * 100
    inputs = [upload_input(jpeg_bytes(1000 + n)) for n in range(PENDING - 2)]
    inputs += [upload_input(good), upload_input(bad)]
    bodies = await create_all(api, carol, inputs)
    assert outcome(bodies) == (PENDING, [])
    full = await gql(api, CREATE_UPLOAD, {"input": upload_input(jpeg_bytes(500))}, token=carol)
    assert full["errors"][0]["extensions"]["quota"] == "pendingUploads"

    # Abort one: its slot is free at once.
    first = bodies[0]["data"]["createUpload"]["media"]["mediaId"]
    aborted = await gql(api, "mutation($id: ID!) { abortUpload(mediaId: $id) }", {"id": first}, token=carol)
    assert aborted["data"] == {"abortUpload": True}
    assert "errors" not in await gql(
        api, CREATE_UPLOAD, {"input": upload_input(jpeg_bytes(501))}, token=carol
    )

    # The good upload completes and the bad one is rejected: two more slots.
    for body, data in ((bodies[-2], good), (bodies[-1], bad)):
        assert await put_upload(body["data"]["createUpload"]["upload"], data) == 200
    media_ids = {bodies[-2]["data"]["createUpload"]["media"]["mediaId"]: "COMPLETED"}
    media_ids[bodies[-1]["data"]["createUpload"]["media"]["mediaId"]] = "REJECTED"

    async def settled() -> bool:
        status = {node["mediaId"]: node["status"] for node in await mine(api, carol)}
        return all(status.get(media_id) == expected for media_id, expected in media_ids.items())

    await eventually(settled, timeout=60)
    more = await create_all(api, carol, [upload_input(jpeg_bytes(600 + n)) for n in range(3)])
    assert outcome(more) == (2, ["pendingUploads"])
