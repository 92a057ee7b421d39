"""Read URLs: S3 presigned GETs (the default) or CloudFront signed URLs (when configured)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from botocore.signers import CloudFrontSigner as BotocoreCloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from services.core.ports import BlobStore


class PresignedGetSigner:
    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    async def sign(self, key: str, *, expires_in: int) -> str:
        return await self._blobs.presign_get(key, expires_in=expires_in)


class CloudFrontUrlSigner:
    """Canned-policy signed URLs (RSA-SHA1, as CloudFront requires) for `https://<domain>/<key>`.
    The distribution caches the bytes with a long TTL; the signature and expiry are per URL."""

    def __init__(self, domain: str, key_pair_id: str, private_key_pem: bytes) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
            raise ValueError("the CloudFront private key must be RSA, at least 2048 bits")
        self._key = key
        self._domain = domain.removeprefix("https://").rstrip("/")
        self._signer = BotocoreCloudFrontSigner(key_pair_id, self._rsa_sign)

    def _rsa_sign(self, message: bytes) -> bytes:
        return self._key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303  # CloudFront's scheme

    async def sign(self, key: str, *, expires_in: int) -> str:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)
        url = f"https://{self._domain}/{quote(key)}"
        return str(self._signer.generate_presigned_url(url, date_less_than=expires))
