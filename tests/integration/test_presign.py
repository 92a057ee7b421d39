"""The presigned PUT signs what real S3 would enforce (moto does not: stack-notes), and moto
takes the bytes over real HTTP."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.aws.clients import AwsClients
from infra.aws.resources import Resources
from infra.aws.s3 import S3BlobStore
from infra.settings import Settings

pytestmark = pytest.mark.integration


async def _presign(aws: AwsClients, settings: Settings, data: bytes) -> tuple[str, dict[str, str]]:
    store = S3BlobStore(aws.s3, settings.bucket)
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    request = await store.presign_put(
        "uploads/01TEST", content_type="image/jpeg", size=len(data), sha256_b64=digest, expires_in=600
    )
    return request.url, request.headers


async def test_signed_headers_and_expiry(aws: AwsClients, settings: Settings, resources: Resources) -> None:
    url, headers = await _presign(aws, settings, b"hello")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["600"]
    assert query["X-Amz-SignedHeaders"][0].split(";") == [
        "content-length",
        "content-type",
        "host",
        "if-none-match",
        "x-amz-checksum-sha256",
    ]
    assert headers == {
        "Content-Type": "image/jpeg",
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(b"hello").digest()).decode(),
        "If-None-Match": "*",
    }


async def test_signature_covers_the_declared_bytes(
    aws: AwsClients, settings: Settings, resources: Resources
) -> None:
    """Recompute the SigV4 query signature with botocore: the declared headers reproduce it,
    any other type, length or checksum does not, so real S3 would answer 403."""
    data = b"declared bytes"
    url, headers = await _presign(aws, settings, data)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    date = query["X-Amz-Date"][0]
    credentials = Credentials("testing", "testing")

    def signature_for(content_type: str, length: int, checksum: str) -> str:
        bare = f"{parts.scheme}://{parts.netloc}{parts.path}"
        request = AWSRequest(
            method="PUT",
            url=bare,
            headers={
                "Content-Type": content_type,
                "Content-Length": str(length),
                "x-amz-checksum-sha256": checksum,
                "If-None-Match": "*",
            },
        )
        request.context["timestamp"] = date
        signer = S3SigV4QueryAuth(credentials, "s3", settings.aws_region, expires=600)
        signer.add_auth(request)
        return str(parse_qs(urlsplit(request.url).query)["X-Amz-Signature"][0])

    checksum = headers["x-amz-checksum-sha256"]
    assert signature_for("image/jpeg", len(data), checksum) == query["X-Amz-Signature"][0]
    other_checksum = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    assert signature_for("image/png", len(data), checksum) != query["X-Amz-Signature"][0]
    assert signature_for("image/jpeg", len(data) + 1, checksum) != query["X-Amz-Signature"][0]
    assert signature_for("image/jpeg", len(data), other_checksum) != query["X-Amz-Signature"][0]


async def test_put_to_the_presigned_url_stores_the_bytes(
    aws: AwsClients, settings: Settings, resources: Resources
) -> None:
    data = b"\xff\xd8\xff" + b"x" * 100
    url, headers = await _presign(aws, settings, data)
    async with httpx.AsyncClient() as client:
        response = await client.put(url, content=data, headers=headers)
    assert response.status_code == 200
    stored = await aws.s3.get_object(Bucket=settings.bucket, Key="uploads/01TEST")
    assert await stored["Body"].read() == data
