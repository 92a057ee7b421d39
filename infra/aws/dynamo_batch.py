"""BatchGetItem in chunks of 100, following UnprocessedKeys until every key is answered."""

from __future__ import annotations

from typing import Any

BATCH_GET_LIMIT = 100


async def batch_get(
    client: Any, table: str, keys: list[dict[str, Any]], *, consistent: bool = False
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        chunk: dict[str, Any] = {"Keys": keys[start : start + BATCH_GET_LIMIT]}
        if consistent:
            chunk["ConsistentRead"] = True
        request: dict[str, Any] = {table: chunk}
        while request:
            response = await client.batch_get_item(RequestItems=request)
            found.extend(response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
    return found
