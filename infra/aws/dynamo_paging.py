"""Reading DynamoDB a page at a time: the one loop every adapter uses.

A Query or Scan stops at `Limit` items *or* at 1 MB, whichever comes first, and says so only with
`LastEvaluatedKey`. `read_page` asks for one more item than the caller wants (so "is there a next
page" is exact), follows `LastEvaluatedKey` when a response stopped short, and asks each follow-up
only for the items still missing (without that, a second response could overshoot and the page
would silently drop what it read past `limit + 1`). `read_all` walks every page of a request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

Item = dict[str, Any]


async def read_page(
    client: Any, request: dict[str, Any], *, limit: int, operation: Literal["query", "scan"] = "query"
) -> tuple[list[Item], bool]:
    """Up to `limit` items from where `request` starts, and whether more remain. `request` is not
    changed."""
    request = {**request, "Limit": limit + 1}
    call = getattr(client, operation)
    items: list[Item] = []
    while True:
        response = await call(**request)
        items.extend(response.get("Items", []))
        if len(items) > limit or "LastEvaluatedKey" not in response:
            return items[:limit], len(items) > limit
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        request["Limit"] = limit + 1 - len(items)


async def read_all(
    client: Any, request: dict[str, Any], *, operation: Literal["query", "scan"] = "query"
) -> AsyncIterator[list[Item]]:
    """Every item `request` matches, one response's worth at a time."""
    request = dict(request)
    call = getattr(client, operation)
    while True:
        response = await call(**request)
        yield response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
