"""RateLimitService: a bucket per user and per address, refused with a retryAfter that works."""

from __future__ import annotations

import pytest

from services.access.rate_limits import Limit, RateLimitPolicy, RateLimitService
from services.core.auth import Principal
from services.core.errors import RateLimited
from tests.fakes import InMemoryRateLimiter

ALICE = Principal(user_id="alice")


def service(limiter: InMemoryRateLimiter, *, enabled: bool = True) -> RateLimitService:
    policy = RateLimitPolicy(
        per_user=Limit(per_minute=60, burst=2), per_ip=Limit(per_minute=6, burst=3), enabled=enabled
    )
    return RateLimitService(limiter, policy)


async def test_user_bucket_refuses_after_burst_and_refills() -> None:
    limiter = InMemoryRateLimiter()
    limits = service(limiter)
    await limits.check(ALICE, "192.0.2.1")
    await limits.check(ALICE, "192.0.2.2")
    with pytest.raises(RateLimited) as refused:
        await limits.check(ALICE, "192.0.2.3")
    assert refused.value.code == "RATE_LIMITED"
    assert refused.value.extensions == {"retryAfter": 1}
    limiter.advance(1.0)
    await limits.check(ALICE, "192.0.2.4")


async def test_address_bucket_is_shared_by_users_and_anonymous_callers() -> None:
    limiter = InMemoryRateLimiter()
    limits = service(limiter)
    for user in ("a", "b", "c"):
        await limits.check(Principal(user_id=user), "192.0.2.9")
    with pytest.raises(RateLimited) as refused:
        await limits.check(None, "192.0.2.9")
    assert refused.value.extensions == {"retryAfter": 10}  # 6 a minute
    await limits.check(None, "192.0.2.10")


async def test_retry_after_is_rounded_up() -> None:
    limiter = InMemoryRateLimiter()
    limits = service(limiter)
    for _ in range(3):
        await limits.check(None, "192.0.2.7")
    limiter.advance(0.5)  # 9.5 s still to wait: told 10, never 9
    with pytest.raises(RateLimited) as refused:
        await limits.check(None, "192.0.2.7")
    assert refused.value.extensions == {"retryAfter": 10}


async def test_disabled_limits_never_refuse() -> None:
    limits = service(InMemoryRateLimiter(), enabled=False)
    for _ in range(10):
        await limits.check(ALICE, "192.0.2.1")
