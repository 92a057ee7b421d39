"""The one DynamoDB paging loop (infra/aws/dynamo_paging.py) against a table that stops responses
short, as DynamoDB does at 1 MB: pages stay exact, follow-ups ask only for what is missing."""

from __future__ import annotations

from typing import Any

import pytest

from infra.aws.dynamo_paging import read_all, read_page


class ShortTable:
    """A Query/Scan over `n` items that returns at most `cap` per response (the 1 MB cut)."""

    def __init__(self, n: int, cap: int) -> None:
        self.items = [{"sk": {"S": f"{i:03d}"}} for i in range(n)]
        self.cap = cap
        self.limits: list[int | None] = []

    async def query(self, **request: Any) -> dict[str, Any]:
        self.limits.append(request.get("Limit"))
        start = int(request["ExclusiveStartKey"]["sk"]["S"]) + 1 if "ExclusiveStartKey" in request else 0
        size = min(self.cap, request.get("Limit") or self.cap)
        page = self.items[start : start + size]
        response: dict[str, Any] = {"Items": page}
        if page and start + len(page) < len(self.items):
            response["LastEvaluatedKey"] = page[-1]
        return response

    scan = query


@pytest.mark.parametrize(("n", "cap", "limit"), [(10, 3, 4), (10, 100, 4), (4, 3, 4), (5, 2, 4), (0, 3, 4)])
async def test_a_page_is_exact_however_short_the_responses(n: int, cap: int, limit: int) -> None:
    table = ShortTable(n, cap)
    items, more = await read_page(table, {"TableName": "t"}, limit=limit)
    assert [item["sk"]["S"] for item in items] == [f"{i:03d}" for i in range(min(n, limit))]
    assert more is (n > limit)
    # The first request asks for one more than wanted; each follow-up only for what is missing.
    read = 0
    for limit_asked in table.limits:
        assert limit_asked == limit + 1 - read, table.limits
        read += min(cap, limit_asked, n - read)


async def test_the_callers_request_is_left_alone() -> None:
    request: dict[str, Any] = {"TableName": "t"}
    await read_page(ShortTable(10, 3), request, limit=4)
    assert request == {"TableName": "t"}


async def test_read_all_walks_every_response() -> None:
    table = ShortTable(7, 3)
    pages = [page async for page in read_all(table, {"TableName": "t"}, operation="scan")]
    assert [len(page) for page in pages] == [3, 3, 1]
    assert table.limits == [None, None, None]
