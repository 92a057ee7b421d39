"""DynamoAuditLog: the audit trail of each media, in the media table (pk=AUDIT#<mediaId>,
sk=<entryId>: infra/aws/dynamo_keys.py), with owner_id, actor, action, at, changes (JSON).

A ULID entry id sorts by time; the purge tombstone's fixed id sorts last. No index attribute is
set, so no listing ever sees these items, and purging the record leaves them alone.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from infra.aws import dynamo_keys as keys
from infra.aws.dynamo_paging import read_page
from services.core.ports import AuditEntry, AuditPage


class DynamoAuditLog:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    async def record(self, entry: AuditEntry) -> None:
        changes = {name: list(pair) for name, pair in entry.changes.items()}
        try:
            await self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": keys.audit(entry.media_id)},
                    "sk": {"S": entry.entry_id},
                    "owner_id": {"S": entry.owner_id},
                    "actor": {"S": entry.actor},
                    "action": {"S": entry.action},
                    "at": {"S": entry.at.isoformat()},
                    "changes": {"S": json.dumps(changes, default=str)},
                },
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": "pk"},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise  # an existing entry with this id: written before, kept as it was

    async def entries(self, media_id: str, *, limit: int, after: str | None) -> AuditPage:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": keys.audit(media_id)}},
            "ScanIndexForward": True,
            "ConsistentRead": True,
        }
        if after is not None:
            request["ExclusiveStartKey"] = {"pk": {"S": keys.audit(media_id)}, "sk": {"S": after}}
        items, more = await read_page(self._client, request, limit=limit)
        return AuditPage([_entry(media_id, item) for item in items], more)


def _entry(media_id: str, item: dict[str, Any]) -> AuditEntry:
    changes = json.loads(item["changes"]["S"])
    return AuditEntry(
        media_id=media_id,
        owner_id=item["owner_id"]["S"],
        entry_id=item["sk"]["S"],
        actor=item["actor"]["S"],
        action=item["action"]["S"],
        at=datetime.fromisoformat(item["at"]["S"]),
        changes={name: (pair[0], pair[1]) for name, pair in changes.items()},
    )
