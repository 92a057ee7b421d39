"""The sweeper against moto: an expired multipart upload loses its parts and its record; the
bucket carries the lifecycle rule that is the backstop."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest

from infra.roots.runtime import Runtime
from infra.settings import Settings
from services.core.auth import Principal
from services.core.media import utcnow
from services.ingest.uploads import UploadRequest
from tests.conftest import isolated_settings

pytestmark = pytest.mark.integration

PART = 5 * 1024 * 1024


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(
        moto_endpoint, redis_url, multipart_threshold_bytes=PART, multipart_part_bytes=PART
    )


async def test_sweeper_aborts_an_expired_multipart_upload(runtime: Runtime) -> None:
    size = PART + 1
    ticket = await runtime.uploads.create_upload(
        Principal(user_id="alice"),
        UploadRequest(
            filename="v.mp4", content_type="video/mp4", size=size, sha256=hashlib.sha256(b"v").hexdigest()
        ),
    )
    media = ticket.media
    assert ticket.multipart is not None and media.multipart_upload_id is not None
    s3, bucket = runtime.clients.s3, runtime.settings.bucket
    await s3.upload_part(
        Bucket=bucket,
        Key=media.object_key,
        UploadId=media.multipart_upload_id,
        PartNumber=1,
        Body=b"x" * PART,
    )
    expired = dataclasses.replace(
        media, expires_at=utcnow() - timedelta(seconds=1), version=media.version + 1
    )
    await runtime.repo.save(expired, expected_version=media.version)

    assert await runtime.processing.sweep_expired() == 1

    assert (await s3.list_multipart_uploads(Bucket=bucket)).get("Uploads", []) == []
    assert await runtime.repo.get(media.id) is None
    rules = (await s3.get_bucket_lifecycle_configuration(Bucket=bucket))["Rules"]
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
