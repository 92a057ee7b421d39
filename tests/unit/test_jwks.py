"""JWKS keys from a local HTTP server standing in for the identity provider: cached, refreshed
on rotation, at most one fetch per interval for unknown kids, weak keys refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from infra.identity.jwks import JwksKeys
from infra.identity.jwt import JwtTokenVerifier
from infra.settings import Settings
from services.core.errors import Unauthenticated
from tests.identity_provider import Provider

ISSUER, AUDIENCE = "https://idp.example", "mediagraph-api"


@pytest.fixture
def provider() -> Iterator[Provider]:
    provider = Provider()
    yield provider
    provider.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


RSA_A = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_B = rsa.generate_private_key(public_exponent=65537, key_size=2048)
WEAK = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  # the weak key under test


def token(key: Any, kid: str, algorithm: str = "RS256") -> str:
    now = int(time.time())
    claims = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def provider_verifier(provider: Provider, algorithms: str) -> JwtTokenVerifier:
    settings = Settings(
        _env_file=None,
        jwt_algorithms=algorithms,
        jwt_jwks_url=provider.url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        cursor_secret="cursor-secret-that-is-long-enough-0123456789",
    )
    return JwtTokenVerifier(settings.tokens)


async def test_rotation_is_picked_up_and_unknown_kids_fetch_at_most_once_per_interval(
    provider: Provider,
) -> None:
    clock = Clock()
    keys = JwksKeys(provider.url, cache_s=300, min_refetch_s=30, clock=clock)
    provider.keys = {"a": RSA_A}
    assert await keys.key("a") is not None
    assert provider.requests == 1
    assert await keys.key("a") is not None  # cached
    # A flood of invented kids costs one fetch per interval at most.
    clock.now += 30
    for i in range(50):
        assert await keys.key(f"forged-{i}") is None
    assert provider.requests == 2

    provider.keys = {"a": RSA_A, "b": RSA_B}  # the provider rotates
    clock.now += 5
    assert await keys.key("b") is None  # inside the interval: no fetch
    assert provider.requests == 2
    clock.now += 30
    assert await keys.key("b") is not None
    assert provider.requests == 3


async def test_keys_expire_from_the_cache(provider: Provider) -> None:
    clock = Clock()
    keys = JwksKeys(provider.url, cache_s=60, min_refetch_s=10, clock=clock)
    provider.keys = {"a": RSA_A}
    assert await keys.key("a") is not None
    provider.keys = {"b": RSA_B}  # "a" retired
    clock.now += 61
    assert await keys.key("a") is None
    assert provider.requests == 2


async def test_weak_keys_are_ignored(provider: Provider) -> None:
    provider.keys = {"weak": WEAK, "ec": ec.generate_private_key(ec.SECP256R1())}
    keys = JwksKeys(provider.url, cache_s=300, min_refetch_s=30)
    assert await keys.key("weak") is None
    assert await keys.key("ec") is not None


async def test_the_verifier_accepts_the_providers_tokens_and_refuses_weak_or_unknown_keys(
    provider: Provider,
) -> None:
    provider.keys = {"a": RSA_A, "weak": WEAK}
    verifier = provider_verifier(provider, "RS256")
    assert (await verifier.verify(token(RSA_A, "a"))).user_id == "alice"
    with pytest.warns(jwt.InsecureKeyLengthWarning):
        weak = token(WEAK, "weak")
    for refused in (weak, token(RSA_B, "a"), token(RSA_B, "unknown")):
        with pytest.raises(Unauthenticated):
            await verifier.verify(refused)


async def test_a_token_whose_kid_names_a_key_of_another_family_is_refused(provider: Provider) -> None:
    # The audit's case: an ES256 token whose kid names the provider's RSA key was a 500 (pyjwt
    # handed the RSA key to its EC verifier: TypeError). The key now decides the algorithms.
    p256, p384 = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    provider.keys = {"rsa": RSA_A, "p256": p256, "p384": p384}
    verifier = provider_verifier(provider, "RS256,ES256,ES384")
    assert (await verifier.verify(token(p256, "p256", "ES256"))).user_id == "alice"
    assert (await verifier.verify(token(p384, "p384", "ES384"))).user_id == "alice"
    assert (await verifier.verify(token(RSA_A, "rsa"))).user_id == "alice"
    for refused in (
        token(p256, "rsa", "ES256"),  # EC token, RSA key
        token(RSA_A, "p256"),  # RSA token, EC key
        token(p256, "p384", "ES256"),  # ES256 against a P-384 key
        token(p384, "p256", "ES384"),
    ):
        with pytest.raises(Unauthenticated):
            await verifier.verify(refused)
