"""S3BlobStore: presigned PUT/GET, HEAD and streamed reads against S3 (or moto)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from botocore.exceptions import ClientError

from services.core.errors import BadUserInput, NotFound
from services.core.ports import BlobInfo, BlobStream, PresignedRequest, UploadedPart

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

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        response = await self._client.create_multipart_upload(
            Bucket=self._bucket, Key=key, ContentType=content_type, ChecksumAlgorithm="SHA256"
        )
        upload_id: str = response["UploadId"]
        return upload_id

    async def presign_part(
        self, key: str, upload_id: str, part_number: int, *, sha256_b64: str | None, expires_in: int
    ) -> PresignedRequest:
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": part_number,
        }
        headers: dict[str, str] = {}
        if sha256_b64 is not None:
            # Signed: real S3 refuses a part whose bytes do not hash to this.
            params["ChecksumSHA256"] = sha256_b64
            headers["x-amz-checksum-sha256"] = sha256_b64
        url = await self._client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires_in)
        return PresignedRequest(url=url, method="PUT", headers=headers, expires_in=expires_in)

    async def list_parts(self, key: str, upload_id: str) -> list[UploadedPart] | None:
        parts: list[UploadedPart] = []
        marker = 0
        while True:
            try:
                response = await self._client.list_parts(
                    Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if _code(exc) in ("NoSuchUpload", "404", "NotFound"):
                    return None
                raise
            parts.extend(
                UploadedPart(
                    part_number=int(part["PartNumber"]),
                    size=int(part["Size"]),
                    etag=part["ETag"],
                    sha256_b64=part.get("ChecksumSHA256"),
                )
                for part in response.get("Parts", [])
            )
            if not response.get("IsTruncated"):
                return parts
            marker = int(response["NextPartNumberMarker"])

    async def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> None:
        listed = []
        for part in parts:
            entry: dict[str, Any] = {"PartNumber": part.part_number, "ETag": part.etag}
            if part.sha256_b64:
                entry["ChecksumSHA256"] = part.sha256_b64
            listed.append(entry)
        try:
            await self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},
                IfNoneMatch="*",  # as for a single PUT: never replace verified bytes
            )
        except ClientError as exc:
            if _code(exc) in (
                "InvalidPart",
                "InvalidPartOrder",
                "EntityTooSmall",
                "BadDigest",
                "NoSuchUpload",
            ):
                raise BadUserInput(f"S3 refused the parts: {_code(exc)}", field="parts") from exc
            raise

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            await self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _code(exc) not in ("NoSuchUpload", "404", "NotFound"):
                raise

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

    async def delete_all_versions(self, prefix: str) -> int:
        # Under versioning a plain DELETE only adds a marker: remove each version by id. On an
        # unversioned bucket the listing still answers, with VersionId "null".
        removed = 0
        request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix}
        while True:
            response = await self._client.list_object_versions(**request)
            doomed = [
                {"Key": entry["Key"], "VersionId": entry["VersionId"]}
                for entry in [*response.get("Versions", []), *response.get("DeleteMarkers", [])]
            ]
            for start in range(0, len(doomed), 1000):
                chunk = doomed[start : start + 1000]
                await self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": chunk, "Quiet": True}
                )
                removed += len(chunk)
            if not response.get("IsTruncated"):
                return removed
            request["KeyMarker"] = response["NextKeyMarker"]
            if response.get("NextVersionIdMarker"):
                request["VersionIdMarker"] = response["NextVersionIdMarker"]

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield entry["Key"]

    async def write(self, key: str, data: bytes, *, content_type: str) -> None:
        await self._client.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)

    async def ping(self) -> None:
        await self._client.head_bucket(Bucket=self._bucket)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _info(response: dict[str, Any]) -> BlobInfo:
    return BlobInfo(
        size=int(response["ContentLength"]),
        content_type=response.get("ContentType"),
        etag=response.get("ETag"),
        metadata=dict(response.get("Metadata") or {}),
        storage_class=response.get("StorageClass"),
        restore=response.get("Restore"),
    )
