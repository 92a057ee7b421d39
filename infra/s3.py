"""S3BlobStore: presigned PUT/GET, HEAD and streamed reads against S3 (or moto)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from services.errors import NotFound
from services.ports import BlobInfo, BlobStream, PresignedRequest

CHUNK_BYTES = 1024 * 1024


class S3BlobStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    async def presign_put(
        self, key: str, *, content_type: str, size: int, sha256_b64: str, expires_in: int
    ) -> PresignedRequest:
        # Every one of these becomes a signed header: real S3 refuses a PUT whose type, length
        # or checksum differ, and If-None-Match makes a second PUT over verified bytes fail.
        url = await self._client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": size,
                "ChecksumSHA256": sha256_b64,
                "IfNoneMatch": "*",
            },
            ExpiresIn=expires_in,
        )
        headers = {
            "Content-Type": content_type,
            "x-amz-checksum-sha256": sha256_b64,
            "If-None-Match": "*",
        }
        return PresignedRequest(url=url, method="PUT", headers=headers, expires_in=expires_in)

    async def presign_get(self, key: str, *, expires_in: int) -> str:
        url: str = await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self._bucket, Key=key)

    async def head(self, key: str) -> BlobInfo | None:
        try:
            response = await self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return _info(response)

    async def open(self, key: str) -> BlobStream | None:
        # One GET serves both the metadata and the bytes: a HEAD first would cost a round trip.
        try:
            response = await self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        body = response["Body"]

        async def close() -> None:
            body.close()

        return BlobStream(info=_info(response), chunks=body.iter_chunks(CHUNK_BYTES), close=close)

    async def put_file(self, key: str, path: str, *, content_type: str) -> None:
        # upload_file streams from disk (multipart past its threshold): never whole in memory.
        await self._client.upload_file(path, self._bucket, key, ExtraArgs={"ContentType": content_type})

    async def copy(self, source: str, destination: str) -> None:
        # Server-side, up to 5 GB (the largest single PUT, and so the largest upload we verify
        # without multipart).
        try:
            await self._client.copy_object(
                Bucket=self._bucket,
                Key=destination,
                CopySource={"Bucket": self._bucket, "Key": source},
                MetadataDirective="COPY",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise NotFound(f"object {source} is gone") from exc
            raise

    async def ping(self) -> None:
        await self._client.head_bucket(Bucket=self._bucket)


def _info(response: dict[str, Any]) -> BlobInfo:
    return BlobInfo(
        size=int(response["ContentLength"]),
        content_type=response.get("ContentType"),
        etag=response.get("ETag"),
        metadata=dict(response.get("Metadata") or {}),
    )
