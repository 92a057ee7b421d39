"""RateLimit: a field extension that charges the caller's token buckets before the resolver runs.

Put on mutations and on expensive queries (in schema/root.py). Each such root field in a
document costs one token (aliases included), so batching fields does not dodge the limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.types import Info


class RateLimit(FieldExtension):
    def __init__(self, cost: int = 1) -> None:
        self.cost = cost

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        context = info.context
        await context.services.rate_limits.check(context.principal, context.client_ip, cost=self.cost)
        return await next_(source, info, **kwargs)
