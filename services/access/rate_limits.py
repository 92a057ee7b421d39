"""Rate limits: a token bucket per user and one per client address, for mutations and
expensive queries. The bucket itself (atomic, shared by every API process) is the RateLimiter port."""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.core.auth import Principal
from services.core.errors import RateLimited
from services.core.ports import Bucket, RateLimiter


@dataclass(frozen=True, slots=True)
class Limit:
    per_minute: float
    burst: int

    @property
    def rate_per_s(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    per_user: Limit
    per_ip: Limit
    enabled: bool = True


class RateLimitService:
    def __init__(self, limiter: RateLimiter, policy: RateLimitPolicy) -> None:
        self._limiter = limiter
        self._policy = policy

    async def check(self, principal: Principal | None, client_ip: str | None, *, cost: int = 1) -> None:
        """Take `cost` from the caller's buckets. Raises RateLimited (with retryAfter) if either is empty.

        Both buckets are charged, even when the first refuses: a client hammering from one
        address pays there too, and the answer names the longer wait."""
        if not self._policy.enabled:
            return
        buckets: list[Bucket] = []
        if principal is not None:
            limit = self._policy.per_user
            buckets.append(Bucket(f"user:{principal.user_id}", limit.rate_per_s, limit.burst))
        if client_ip is not None:
            limit = self._policy.per_ip
            buckets.append(Bucket(f"ip:{client_ip}", limit.rate_per_s, limit.burst))
        if not buckets:
            return
        # One round trip for both buckets: this runs on every request (reads included).
        waits = await self._limiter.acquire_all(buckets, cost=cost)
        wait = max(waits, default=0.0)
        if wait > 0:
            raise RateLimited(f"too many requests; retry in {max(1, math.ceil(wait))} s", retry_after=wait)
