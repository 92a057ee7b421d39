"""Verified tokens remembered: once per token until its expiry or a minute, refusals never."""

from __future__ import annotations

import time

import pytest

from infra.identity.token_cache import CachedTokenVerifier
from services.core.auth import Principal
from services.core.errors import Unauthenticated


class Verifier:
    def __init__(self) -> None:
        self.calls = 0
        self.expires_at = time.time() + 3600

    async def verify(self, token: str) -> Principal:
        self.calls += 1
        if not token.startswith("good"):
            raise Unauthenticated("invalid or expired token")
        return Principal(user_id=token, expires_at=self.expires_at)


async def test_a_token_is_verified_once_then_remembered() -> None:
    inner = Verifier()
    tokens = CachedTokenVerifier(inner)
    assert (await tokens.verify("good-a")).user_id == "good-a"
    assert (await tokens.verify("good-a")).user_id == "good-a"
    assert (await tokens.verify("good-b")).user_id == "good-b"
    assert inner.calls == 2


async def test_refusals_are_never_remembered() -> None:
    inner = Verifier()
    tokens = CachedTokenVerifier(inner)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await tokens.verify("bad")
    assert inner.calls == 2


async def test_never_past_the_tokens_expiry_nor_the_maximum_age() -> None:
    inner = Verifier()
    inner.expires_at = time.time() - 1  # already expired (accepted by the inner's leeway)
    tokens = CachedTokenVerifier(inner)
    await tokens.verify("good-a")
    await tokens.verify("good-a")
    assert inner.calls == 2  # checked again each time: the inner decides

    inner.expires_at = time.time() + 3600
    aged = CachedTokenVerifier(inner, max_age_s=0)
    await aged.verify("good-c")
    await aged.verify("good-c")
    assert inner.calls == 4


async def test_memory_is_bounded() -> None:
    inner = Verifier()
    tokens = CachedTokenVerifier(inner, max_entries=2)
    for name in ("good-1", "good-2", "good-3", "good-1"):
        await tokens.verify(name)
    assert inner.calls == 4  # good-1 was the least recently used when good-3 came
