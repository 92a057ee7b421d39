"""DynamoEngagementStore: likes and per-media counters, beside the record in the same table.

pk=MEDIA#<id>  sk=LIKE#<user>   one item per like: a second like by the same user fails its
                                condition, so counting stays exact under concurrency
pk=MEDIA#<id>  sk=STATS         like_count, view_count: kept apart from the record, whose
                                whole-item versioned writes would otherwise lose increments
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from infra.aws import dynamo_keys as keys
from infra.aws.dynamo_batch import batch_get
from infra.aws.dynamo_paging import read_all
from services.core.ports import MediaStats


class DynamoEngagementStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    async def like(self, media_id: str, user_id: str) -> bool:
        return await self._toggle(media_id, user_id, like=True)

    async def unlike(self, media_id: str, user_id: str) -> bool:
        return await self._toggle(media_id, user_id, like=False)

    async def _toggle(self, media_id: str, user_id: str, *, like: bool) -> bool:
        key = keys.key(keys.media(media_id), keys.like(user_id))
        change: dict[str, Any]
        if like:
            item = {**key, "user_id": {"S": user_id}}
            change = {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(#pk)",
                }
            }
        else:
            change = {
                "Delete": {
                    "TableName": self._table,
                    "Key": key,
                    "ConditionExpression": "attribute_exists(#pk)",
                }
            }
        change[next(iter(change))]["ExpressionAttributeNames"] = {"#pk": "pk"}
        counter = {
            "Update": {
                "TableName": self._table,
                "Key": keys.key(keys.media(media_id), keys.STATS),
                "UpdateExpression": "ADD #likes :delta",
                "ExpressionAttributeNames": {"#likes": "like_count"},
                "ExpressionAttributeValues": {":delta": {"N": "1" if like else "-1"}},
            }
        }
        try:
            await self._client.transact_write_items(TransactItems=[change, counter])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False  # already liked / not liked: nothing to count
            raise
        return True

    async def liked(self, user_id: str, media_ids: list[str]) -> set[str]:
        wanted = [keys.key(keys.media(m), keys.like(user_id)) for m in dict.fromkeys(media_ids)]
        return {item["pk"]["S"].removeprefix(keys.MEDIA_PREFIX) for item in await self._batch_get(wanted)}

    async def stats(self, media_ids: list[str]) -> dict[str, MediaStats]:
        wanted = [keys.key(keys.media(m), keys.STATS) for m in dict.fromkeys(media_ids)]
        return {
            item["pk"]["S"].removeprefix(keys.MEDIA_PREFIX): MediaStats(
                like_count=max(0, int(item.get("like_count", {}).get("N", "0"))),
                view_count=max(0, int(item.get("view_count", {}).get("N", "0"))),
            )
            for item in await self._batch_get(wanted)
        }

    async def forget(self, media_id: str) -> None:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ProjectionExpression": "#pk, #sk",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {":pk": {"S": keys.media(media_id)}},
        }
        async for items in read_all(self._client, request):
            # The record (sk=META) is the repository's: it goes last, with its index items.
            doomed = [item for item in items if item["sk"]["S"] != keys.RECORD]
            for start in range(0, len(doomed), 25):
                writes = [{"DeleteRequest": {"Key": key}} for key in doomed[start : start + 25]]
                pending: dict[str, Any] = {self._table: writes}
                while pending:
                    answer = await self._client.batch_write_item(RequestItems=pending)
                    pending = answer.get("UnprocessedItems") or {}

    async def forget_user(self, user_id: str) -> int:
        # No index maps a user to their likes: an account deletion is rare enough for one
        # filtered scan, and each unlike keeps its media's counter exact.
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "#sk = :sk",
            "ProjectionExpression": "#pk",
            "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
            "ExpressionAttributeValues": {":sk": {"S": keys.like(user_id)}},
        }
        removed = 0
        async for items in read_all(self._client, request, operation="scan"):
            for item in items:
                if await self.unlike(item["pk"]["S"].removeprefix(keys.MEDIA_PREFIX), user_id):
                    removed += 1
        return removed

    async def add_views(self, counts: dict[str, int]) -> None:
        for media_id, count in counts.items():
            await self._client.update_item(
                TableName=self._table,
                Key=keys.key(keys.media(media_id), keys.STATS),
                UpdateExpression="ADD #views :count",
                ExpressionAttributeNames={"#views": "view_count"},
                ExpressionAttributeValues={":count": {"N": str(count)}},
            )

    async def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await batch_get(self._client, self._table, keys)
