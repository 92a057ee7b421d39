"""CloudFront signed URLs verify with the public key and expire when they say."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from infra.aws.cloudfront import CloudFrontUrlSigner


def _key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cloudfront_b64decode(value: str) -> bytes:
    return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))


async def test_signed_url_verifies_with_the_public_key_and_expires_as_told() -> None:
    key = _key()
    signer = CloudFrontUrlSigner("media.example.com", "K2JCJMDEHXQW5F", _pem(key))
    before = int(time.time())
    url = await signer.sign("derived/01ABC/display.webp", expires_in=300)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        == "https://media.example.com/derived/01ABC/display.webp"
    )
    assert query["Key-Pair-Id"] == ["K2JCJMDEHXQW5F"]
    expires = int(query["Expires"][0])
    assert before + 300 <= expires <= int(time.time()) + 300

    resource = f"{parts.scheme}://{parts.netloc}{parts.path}"
    policy = json.dumps(
        {"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
        separators=(",", ":"),
    ).encode()
    signature = _cloudfront_b64decode(query["Signature"][0])
    key.public_key().verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # raises if wrong
    tampered = policy.replace(str(expires).encode(), str(expires + 3600).encode())
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, tampered, padding.PKCS1v15(), hashes.SHA1())


def test_weak_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="2048"):
        CloudFrontUrlSigner("media.example.com", "K1", _pem(_key(1024)))
