"""Archived originals through the public API, against moto server. moto stores lifecycle rules
but never applies them, so the objects are written directly in GLACIER_IR / GLACIER."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from infra.roots.runtime import Runtime
from tests.client import gql
from tests.e2e.test_listing import seed

pytestmark = pytest.mark.e2e

MEDIA = "query($id: ID!) { media(id: $id) { availability url } }"


@pytest.mark.parametrize(
    ("storage_class", "availability", "get_status"),
    [
        ("STANDARD", "AVAILABLE", 200),
        ("GLACIER_IR", "AVAILABLE", 200),  # instant retrieval: views as before
        ("GLACIER", "RESTORE_REQUIRED", 403),  # S3: InvalidObjectState until restored
    ],
)
async def test_archived_media_views_or_says_it_must_be_restored(
    api: str,
    runtime: Runtime,
    token: Callable[..., str],
    storage_class: str,
    availability: str,
    get_status: int,
) -> None:
    media = await seed(runtime, "alice")
    await runtime.clients.s3.put_object(
        Bucket=runtime.settings.bucket, Key=media.object_key, Body=b"the bytes", StorageClass=storage_class
    )
    body = await gql(api, MEDIA, {"id": media.id}, token=token("bob"))
    assert "errors" not in body, body
    assert body["data"]["media"]["availability"] == availability
    async with httpx.AsyncClient() as client:
        response = await client.get(body["data"]["media"]["url"])
    assert response.status_code == get_status
    if get_status == 200:
        assert response.content == b"the bytes"


async def test_missing_bytes_say_so(api: str, runtime: Runtime, token: Callable[..., str]) -> None:
    media = await seed(runtime, "alice")
    body = await gql(api, MEDIA, {"id": media.id}, token=token("alice"))
    assert body["data"]["media"]["availability"] == "MISSING"
