"""Quotas through the public API: over quota is BAD_USER_INPUT, clearly worded; nothing is created."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from infra.settings import Settings
from tests.client import CREATE_UPLOAD, create_upload, error_codes, gql, upload_input
from tests.conftest import isolated_settings
from tests.media_files import jpeg_bytes

pytestmark = pytest.mark.e2e

MINE = "{ myMedia { edges { node { mediaId } } } }"


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(
        moto_endpoint, redis_url, quota_pending_uploads_per_user=2, quota_bytes_per_user=100_000
    )


async def test_quota_of_pending_uploads(api: str, token: Callable[..., str]) -> None:
    alice = token("alice")
    for _ in range(2):
        await create_upload(api, alice, jpeg_bytes(1000))
    body = await gql(api, CREATE_UPLOAD, {"input": upload_input(jpeg_bytes(1000))}, token=alice)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert "2 uploads are already in progress" in body["errors"][0]["message"]
    mine = await gql(api, MINE, token=alice)
    assert len(mine["data"]["myMedia"]["edges"]) == 2  # nothing was created
    # Aborting one frees a slot.
    first = mine["data"]["myMedia"]["edges"][0]["node"]["mediaId"]
    aborted = await gql(api, "mutation($id: ID!) { abortUpload(mediaId: $id) }", {"id": first}, token=alice)
    assert aborted["data"] == {"abortUpload": True}
    await create_upload(api, alice, jpeg_bytes(1000))


async def test_quota_of_bytes(api: str, token: Callable[..., str]) -> None:
    bob = token("bob")
    await create_upload(api, bob, jpeg_bytes(60_000))
    body = await gql(api, CREATE_UPLOAD, {"input": upload_input(jpeg_bytes(50_000))}, token=bob)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert "the limit is 100000 bytes" in body["errors"][0]["message"]
    assert len((await gql(api, MINE, token=bob))["data"]["myMedia"]["edges"]) == 1
    await create_upload(api, bob, jpeg_bytes(40_000))  # what still fits is accepted
