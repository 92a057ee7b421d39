"""DynamoMediaRepository: media records in one DynamoDB table.

Item layout (single table; every attribute name aliased in expressions, see stack-notes):

    pk=MEDIA#<id>  sk=META                the record
      gsi1pk=OWNER#<owner>                gsi1sk=<createdAt>#<id>   owner's timeline
      gsi2pk=OWNER#<owner>#<status>       gsi2sk=<createdAt>#<id>   owner's timeline by status
      gsi3pk=STATUS#<status>              gsi3sk=<createdAt>#<id>   everyone's, by status
      gsi4pk=SHA#<owner>#<sha256>         gsi4sk=<createdAt>#<id>   only while COMPLETED:
                                                                    instant re-upload lookup
      ttl=<epoch>                         only while PENDING: abandoned uploads expire
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from services.errors import Conflict
from services.media import Media, MediaStatus
from services.ports import Page

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

INDEXES = {
    "gsi1": ("gsi1pk", "gsi1sk"),
    "gsi2": ("gsi2pk", "gsi2sk"),
    "gsi3": ("gsi3pk", "gsi3sk"),
    # Sparse: only COMPLETED records carry these keys, so the index follows deletes, quarantines
    # and restores by itself (a separate SHA item would need a second write on every change).
    "gsi4": ("gsi4pk", "gsi4sk"),
}


def _sort_key(media: Media) -> str:
    return f"{media.created_at.isoformat()}#{media.id}"


def to_item(media: Media) -> dict[str, Any]:
    record = {key: value for key, value in media.to_record().items() if value is not None}
    sort = _sort_key(media)
    item: dict[str, Any] = {
        **record,
        "pk": f"MEDIA#{media.id}",
        "sk": "META",
        "gsi1pk": f"OWNER#{media.owner_id}",
        "gsi1sk": sort,
        "gsi2pk": f"OWNER#{media.owner_id}#{media.status.value}",
        "gsi2sk": sort,
        "gsi3pk": f"STATUS#{media.status.value}",
        "gsi3sk": sort,
    }
    if media.status is MediaStatus.COMPLETED:
        item["gsi4pk"] = f"SHA#{media.owner_id}#{media.sha256}"
        item["gsi4sk"] = sort
    if not media.tags:
        item.pop("tags", None)  # DynamoDB refuses empty sets; an empty list is fine but noisy
    if media.expires_at is not None:
        item["ttl"] = int(media.expires_at.timestamp())
    return {key: _serializer.serialize(value) for key, value in item.items()}


def from_item(item: dict[str, Any]) -> Media:
    plain = {key: _deserializer.deserialize(value) for key, value in item.items()}
    for key, value in plain.items():
        if isinstance(value, Decimal):
            plain[key] = int(value)
    return Media.from_record(plain)


class DynamoMediaRepository:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    async def create(self, media: Media) -> None:
        try:
            await self._client.put_item(
                TableName=self._table,
                Item=to_item(media),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": "pk"},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise Conflict(f"media {media.id} already exists") from exc
            raise

    async def get(self, media_id: str) -> Media | None:
        response = await self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"MEDIA#{media_id}"}, "sk": {"S": "META"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_item(item) if item else None

    async def save(self, media: Media, *, expected_version: int) -> None:
        try:
            await self._client.put_item(
                TableName=self._table,
                Item=to_item(media),
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise Conflict(f"media {media.id} changed meanwhile") from exc
            raise

    async def find_completed_by_sha256(self, owner_id: str, sha256: str) -> Media | None:
        # A GSI read is eventually consistent: a completion a moment ago may be missed, which
        # only costs that client a normal upload.
        response = await self._client.query(
            TableName=self._table,
            IndexName="gsi4",
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": "gsi4pk"},
            ExpressionAttributeValues={":p": {"S": f"SHA#{owner_id}#{sha256}"}},
            ScanIndexForward=False,
            Limit=1,
        )
        items = response.get("Items", [])
        return from_item(items[0]) if items else None

    async def list_by_owner(
        self, owner_id: str, *, limit: int, after: str | None, status: MediaStatus | None = None
    ) -> Page:
        if status is None:
            index, partition = "gsi1", f"OWNER#{owner_id}"
        else:
            index, partition = "gsi2", f"OWNER#{owner_id}#{status.value}"
        pk_name, sk_name = INDEXES[index]
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": pk_name},
            "ExpressionAttributeValues": {":p": {"S": partition}},
            "ScanIndexForward": False,
            # One more than asked: hasNextPage is then exact, whatever LastEvaluatedKey says.
            "Limit": limit + 1,
        }
        if after is not None:
            sort, _, media_id = after.rpartition("#")
            request["ExclusiveStartKey"] = {
                "pk": {"S": f"MEDIA#{media_id}"},
                "sk": {"S": "META"},
                pk_name: {"S": partition},
                sk_name: {"S": after},
            }
            if not sort:
                request.pop("ExclusiveStartKey")
        items: list[Media] = []
        while True:
            response = await self._client.query(**request)
            items.extend(from_item(item) for item in response.get("Items", []))
            # A 1 MB response page may stop short of Limit: keep reading until we know.
            if len(items) > limit or "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            request["Limit"] = limit + 1 - len(items)
        return Page(items=items[:limit], has_more=len(items) > limit)

    async def oldest_with_status(self, status: MediaStatus, *, limit: int) -> list[Media]:
        response = await self._client.query(
            TableName=self._table,
            IndexName="gsi3",
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": "gsi3pk"},
            ExpressionAttributeValues={":p": {"S": f"STATUS#{status.value}"}},
            ScanIndexForward=True,
            Limit=limit,
        )
        return [from_item(item) for item in response.get("Items", [])]

    async def delete(self, media: Media) -> None:
        try:
            await self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": f"MEDIA#{media.id}"}, "sk": {"S": "META"}},
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":expected": {"N": str(media.version)}},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise Conflict(f"media {media.id} changed meanwhile") from exc
            raise

    def position_of(self, media: Media) -> str:
        return _sort_key(media)

    async def ping(self) -> None:
        await self._client.describe_table(TableName=self._table)


def _is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")
