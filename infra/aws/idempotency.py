"""DynamoIdempotencyStore: idempotency keys of createUpload, one conditional put each.

    pk=IDEMP#<owner>#<key>  sk=IDEMP  mediaId, fingerprint, ttl

Same table as the media records (no index attributes, so no index sees them). A key is taken by
`attribute_not_exists(pk) OR ttl < now`: moto never runs TTL and real TTL runs late, so an
expired key is free again whatever DynamoDB has not yet deleted.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from infra.aws import dynamo_keys as keys
from services.core.errors import Conflict
from services.core.ports import IdempotencyClaim


class DynamoIdempotencyStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    async def claim(
        self, owner_id: str, key: str, claim: IdempotencyClaim, *, ttl_s: int, _retried: bool = False
    ) -> IdempotencyClaim | None:
        now = int(time.time())
        try:
            await self._client.put_item(
                TableName=self._table,
                Item={
                    **_key(owner_id, key),
                    "mediaId": {"S": claim.media_id},
                    "fingerprint": {"S": claim.fingerprint},
                    "ttl": {"N": str(now + ttl_s)},
                },
                ConditionExpression="attribute_not_exists(#pk) OR #ttl < :now",
                ExpressionAttributeNames={"#pk": "pk", "#ttl": "ttl"},
                ExpressionAttributeValues={":now": {"N": str(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            item = exc.response.get("Item")
            if item is None:  # an older DynamoDB (or emulator) that does not return it
                response = await self._client.get_item(
                    TableName=self._table, Key=_key(owner_id, key), ConsistentRead=True
                )
                item = response.get("Item")
            if item is None and not _retried:  # released between our write and our read
                return await self.claim(owner_id, key, claim, ttl_s=ttl_s, _retried=True)
            if item is None:
                raise Conflict("idempotencyKey is changing hands; retry") from exc
            return IdempotencyClaim(media_id=item["mediaId"]["S"], fingerprint=item["fingerprint"]["S"])
        return None

    async def release(self, owner_id: str, key: str, claim: IdempotencyClaim) -> None:
        try:
            await self._client.delete_item(
                TableName=self._table,
                Key=_key(owner_id, key),
                ConditionExpression="#media = :media",
                ExpressionAttributeNames={"#media": "mediaId"},
                ExpressionAttributeValues={":media": {"S": claim.media_id}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


def _key(owner_id: str, key: str) -> dict[str, Any]:
    return keys.key(keys.idempotency(owner_id, key), keys.IDEMPOTENCY)
