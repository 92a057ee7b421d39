"""DynamoMediaRepository: media records, their tag index items and per-owner counters, in one
DynamoDB table (key schema: infra/aws/dynamo_keys.py). Every attribute name in an expression is
aliased (see stack-notes).

DynamoDB cannot index list elements, hence the tag items; they hold keys only, and readers
batch-get the records, so a tag item never carries stale copies of mutable fields.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from infra.aws import dynamo_keys as keys
from infra.aws.dynamo_batch import batch_get
from infra.aws.dynamo_keys import INDEXES
from infra.aws.dynamo_paging import read_all, read_page
from infra.aws.outbox import outbox_put
from services.core.errors import Conflict
from services.core.events import MediaEvent
from services.core.media import Media, MediaStatus, Visibility
from services.core.ports import HELD_STATUSES, ListFilter, Page, Quota, QuotaExceeded, Usage

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


HELD_BYTES = "b_HELD"


def _counts_key(owner_id: str) -> dict[str, Any]:
    return keys.key(keys.owner(owner_id), keys.COUNTS)


def _held(media: Media) -> int:
    return media.size if media.status in HELD_STATUSES else 0


def _number(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


def _failed_at(exc: Exception, index: int) -> bool:
    """Whether a cancelled transaction failed on the condition of item `index` (the counters)."""
    cause = exc.__cause__
    if not isinstance(cause, ClientError):
        return False
    reasons = cause.response.get("CancellationReasons") or []
    return len(reasons) > index and reasons[index].get("Code") == "ConditionalCheckFailed"


def _within(update: dict[str, Any], quota: Quota, size: int) -> dict[str, Any]:
    """The counters' update, conditional on the quota: one pending upload fewer than the limit
    before it, and room for `size` more bytes. Fails the whole transaction otherwise."""
    body = dict(update["Update"])
    body["ConditionExpression"] = (
        "(attribute_not_exists(#cp) OR #cp < :max_pending) AND (attribute_not_exists(#hb) OR #hb <= :room)"
    )
    body["ExpressionAttributeNames"] = {
        **body["ExpressionAttributeNames"],
        "#cp": "c_PENDING",
        "#hb": HELD_BYTES,
    }
    body["ExpressionAttributeValues"] = {
        **body["ExpressionAttributeValues"],
        ":max_pending": {"N": str(quota.max_pending)},
        ":room": {"N": str(quota.max_bytes - size)},
    }
    return {"Update": body}


def sort_key(media: Media) -> str:
    return f"{media.created_at.isoformat()}#{media.id}"


def status_partition(status: MediaStatus, visibility: Visibility | None = None) -> str:
    if status is MediaStatus.COMPLETED and visibility is not None:
        return keys.status(status.value, visibility.value)
    return keys.status(status.value)


def _serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items()}


def to_item(media: Media) -> dict[str, Any]:
    record = {key: value for key, value in media.to_record().items() if value is not None}
    sort = sort_key(media)
    item: dict[str, Any] = {
        **record,
        "pk": keys.media(media.id),
        "sk": keys.RECORD,
        "gsi1pk": keys.owner(media.owner_id),
        "gsi1sk": sort,
        "gsi2pk": keys.owner_status(media.owner_id, media.status.value),
        "gsi2sk": sort,
        "gsi3pk": status_partition(media.status, media.visibility),
        "gsi3sk": sort,
    }
    if media.status is MediaStatus.COMPLETED:
        item["gsi4pk"] = keys.sha(media.owner_id, media.sha256)
        item["gsi4sk"] = sort
    if media.status is MediaStatus.DELETED and media.purge_after is not None:
        item["gsi3sk"] = f"{media.purge_after.isoformat()}#{media.id}"
    if not media.tags:
        item.pop("tags", None)
    if media.expires_at is not None and media.status is MediaStatus.PENDING:
        # Only while PENDING: a deleted upload waits for the purge, which also cleans up counters.
        item["ttl"] = int(media.expires_at.timestamp())
    return _serialize(item)


def from_item(item: dict[str, Any]) -> Media:
    plain = {key: _deserializer.deserialize(value) for key, value in item.items()}
    for key, value in plain.items():
        if isinstance(value, Decimal):
            plain[key] = int(value)
    return Media.from_record(plain)


def _tag_item(media: Media, tag: str) -> dict[str, Any]:
    sort = sort_key(media)
    return _serialize(
        {
            "pk": keys.tag(tag),
            "sk": sort,
            "gsi1pk": keys.owner_tag(media.owner_id, tag),
            "gsi1sk": sort,
            "media_id": media.id,
        }
    )


def _media_key(media_id: str) -> dict[str, Any]:
    return keys.key(keys.media(media_id), keys.RECORD)


class DynamoMediaRepository:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    # --- writes: one transaction each, so records, tag items and counters never disagree ---

    async def create(
        self, media: Media, *, events: Sequence[MediaEvent] = (), quota: Quota | None = None
    ) -> None:
        if quota is not None:
            if media.size > quota.max_bytes:
                item = await self._counts(media.owner_id) or {}
                raise QuotaExceeded("bytes", pending=_number(item, "c_PENDING"), held_bytes=0)
            await self._backfill_held_bytes(media.owner_id)
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(media),
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": "pk"},
                }
            }
        ]
        items += [{"Put": {"TableName": self._table, "Item": _tag_item(media, tag)}} for tag in media.tags]
        counts = self._count_updates(media.owner_id, Counter({media.status: 1}), _held(media))
        if quota is not None:
            counts = [_within(update, quota, media.size) for update in counts]
        counts_at = len(items)  # where the counters' update sits in the transaction
        items += counts
        items += [outbox_put(self._table, event) for event in events]
        try:
            await self._transact(items, f"media {media.id} already exists")
        except Conflict as exc:
            if quota is not None and _failed_at(exc, counts_at):
                await self._quota_exceeded(media.owner_id, quota)
            raise

    async def get(self, media_id: str) -> Media | None:
        response = await self._client.get_item(
            TableName=self._table, Key=_media_key(media_id), ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else None

    async def get_many(self, media_ids: list[str]) -> dict[str, Media]:
        keys = [_media_key(media_id) for media_id in dict.fromkeys(media_ids)]
        items = await batch_get(self._client, self._table, keys, consistent=True)
        return {media.id: media for media in map(from_item, items)}

    async def save(
        self,
        media: Media,
        *,
        expected_version: int,
        previous: Media | None = None,
        events: Sequence[MediaEvent] = (),
    ) -> None:
        if previous is None or previous.version != expected_version:
            previous = await self.get(media.id)
            if previous is None or previous.version != expected_version:
                raise Conflict(f"media {media.id} changed meanwhile")
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(media),
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
                }
            }
        ]
        for tag in set(previous.tags) - set(media.tags):
            key = keys.key(keys.tag(tag), sort_key(media))
            items.append({"Delete": {"TableName": self._table, "Key": key}})
        for tag in set(media.tags) - set(previous.tags):
            items.append({"Put": {"TableName": self._table, "Item": _tag_item(media, tag)}})
        moved: Counter[MediaStatus] = Counter()
        if previous.status is not media.status:
            moved.update({media.status: 1, previous.status: -1})
        items += self._count_updates(media.owner_id, moved, _held(media) - _held(previous))
        items += [outbox_put(self._table, event) for event in events]
        await self._transact(items, f"media {media.id} changed meanwhile")

    async def delete(self, media: Media, *, events: Sequence[MediaEvent] = ()) -> None:
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _media_key(media.id),
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {":expected": {"N": str(media.version)}},
                }
            }
        ]
        for tag in media.tags:
            key = keys.key(keys.tag(tag), sort_key(media))
            items.append({"Delete": {"TableName": self._table, "Key": key}})
        items += self._count_updates(media.owner_id, Counter({media.status: -1}), -_held(media))
        items += [outbox_put(self._table, event) for event in events]
        await self._transact(items, f"media {media.id} changed meanwhile")

    def _count_updates(
        self, owner_id: str, deltas: Counter[MediaStatus], held_bytes: int = 0
    ) -> list[dict[str, Any]]:
        changes = {f"c_{status.value}": delta for status, delta in deltas.items() if delta}
        if held_bytes:
            changes[HELD_BYTES] = held_bytes
        if not changes:
            return []
        names = {f"#c{i}": name for i, name in enumerate(changes)}
        values = {f":d{i}": {"N": str(delta)} for i, delta in enumerate(changes.values())}
        expression = "ADD " + ", ".join(f"#c{i} :d{i}" for i in range(len(changes)))
        return [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _counts_key(owner_id),
                    "UpdateExpression": expression,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]

    async def _counts(self, owner_id: str) -> dict[str, Any] | None:
        response = await self._client.get_item(
            TableName=self._table, Key=_counts_key(owner_id), ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def _backfill_held_bytes(self, owner_id: str) -> None:
        """Counters written before b_HELD existed lack it: compute it once from the records."""
        item = await self._counts(owner_id)
        if item is None or HELD_BYTES in item:
            return  # a new owner (nothing held), or counted already
        now = datetime.now(UTC)
        held = sum([(await self.owner_usage(owner_id, status, now=now)).bytes for status in HELD_STATUSES])
        with contextlib.suppress(ClientError):  # another request set it first: theirs stands
            await self._client.update_item(
                TableName=self._table,
                Key=_counts_key(owner_id),
                UpdateExpression="SET #held = :held",
                ConditionExpression="attribute_not_exists(#held)",
                ExpressionAttributeNames={"#held": HELD_BYTES},
                ExpressionAttributeValues={":held": {"N": str(held)}},
            )

    async def _quota_exceeded(self, owner_id: str, quota: Quota) -> None:
        """The counters refused a create: which quota, with the counters as they are now."""
        item = await self._counts(owner_id) or {}
        pending, held = _number(item, "c_PENDING"), _number(item, HELD_BYTES)
        kind = "pendingUploads" if pending >= quota.max_pending else "bytes"
        raise QuotaExceeded(kind, pending=pending, held_bytes=held)

    async def _transact(self, items: list[dict[str, Any]], conflict_message: str) -> None:
        try:
            await self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise Conflict(conflict_message) from exc
            raise

    async def find_completed_by_sha256(self, owner_id: str, sha256: str) -> Media | None:
        # A GSI read is eventually consistent: a completion a moment ago may be missed, which
        # only costs that client a normal upload.
        response = await self._client.query(
            TableName=self._table,
            IndexName="gsi4",
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": "gsi4pk"},
            ExpressionAttributeValues={":p": {"S": keys.sha(owner_id, sha256)}},
            ScanIndexForward=False,
            Limit=1,
        )
        items = response.get("Items", [])
        return from_item(items[0]) if items else None

    async def count_by_status(self, owner_id: str) -> dict[MediaStatus, int]:
        response = await self._client.get_item(
            TableName=self._table,
            Key=_counts_key(owner_id),
            ConsistentRead=True,
        )
        item = response.get("Item") or {}
        counts = {status: int(item.get(f"c_{status.value}", {}).get("N", "0")) for status in MediaStatus}
        # A counter the owner's writes took back to zero stays on the item: none is absent, as
        # the port says (tests/integration/test_port_contracts.py holds the fake to the same).
        return {status: count for status, count in counts.items() if count}

    # --- reads: newest first, keyset pagination on <createdAt>#<id> ---

    async def list_by_owner(
        self, owner_id: str, *, limit: int, after: str | None, filter: ListFilter
    ) -> Page:
        if filter.tag is not None:
            page = await self._list_tag_items(
                "gsi1", keys.owner_tag(owner_id, filter.tag), limit, after, filter
            )
            if filter.status is not None:
                # Narrowed after the read: the page may come out short; its cursor still advances.
                page = Page(
                    [m for m in page.items if m.status is filter.status], page.has_more, page.last_position
                )
            return page
        if filter.status is None:
            return await self._list_records("gsi1", keys.owner(owner_id), limit, after, filter)
        return await self._list_records(
            "gsi2", keys.owner_status(owner_id, filter.status.value), limit, after, filter
        )

    async def completed_hashes(self, owner_id: str, *, limit: int) -> list[tuple[str, str]]:
        # Two attributes of each item, not the records: a 1 MB response holds thousands, and
        # nothing is parsed into Media that is only compared by its hash.
        partition = keys.owner_status(owner_id, MediaStatus.COMPLETED.value)
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi2",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "gsi2pk", "#id": "id", "#h": "phash"},
            "ExpressionAttributeValues": {":p": {"S": partition}},
            "ProjectionExpression": "#id, #h",
            "ScanIndexForward": False,
        }
        items, _ = await read_page(self._client, request, limit=limit)
        return [(item["id"]["S"], item["phash"]["S"]) for item in items if "phash" in item]

    async def list_by_tag(self, tag: str, *, limit: int, after: str | None) -> Page:
        return await self._list_tag_items(None, keys.tag(tag), limit, after, ListFilter())

    async def list_completed(self, visibility: Visibility, *, limit: int, after: str | None) -> Page:
        partition = status_partition(MediaStatus.COMPLETED, visibility)
        return await self._list_records("gsi3", partition, limit, after, ListFilter())

    async def oldest_with_status(self, status: MediaStatus, *, limit: int) -> list[Media]:
        response = await self._client.query(
            TableName=self._table,
            IndexName="gsi3",
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": "gsi3pk"},
            ExpressionAttributeValues={":p": {"S": status_partition(status)}},
            ScanIndexForward=True,
            Limit=limit,
        )
        return [from_item(item) for item in response.get("Items", [])]

    def position_of(self, media: Media) -> str:
        return sort_key(media)

    async def owner_usage(self, owner_id: str, status: MediaStatus, *, now: datetime) -> Usage:
        # Only `size` and `ttl` are read: the quota check costs little even for large libraries.
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi2",
            "KeyConditionExpression": "#p = :p",
            "ProjectionExpression": "#size, #ttl",
            "ExpressionAttributeNames": {"#p": "gsi2pk", "#size": "size", "#ttl": "ttl"},
            "ExpressionAttributeValues": {":p": {"S": keys.owner_status(owner_id, status.value)}},
        }
        count = total = 0
        cutoff = now.timestamp()
        async for items in read_all(self._client, request):
            for item in items:
                # Expired PENDING records linger until swept (moto never runs TTL): not in flight.
                if "ttl" in item and int(item["ttl"]["N"]) <= cutoff:
                    continue
                count += 1
                total += int(item["size"]["N"])
        return Usage(count=count, bytes=total)

    async def scan(self, *, limit: int, after: str | None) -> Page:
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "#sk = :meta",
            "ExpressionAttributeNames": {"#sk": "sk"},
            "ExpressionAttributeValues": {":meta": {"S": keys.RECORD}},
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = json.loads(after)
        response = await self._client.scan(**request)
        items = response.get("Items", [])
        records = [from_item(item) for item in items if item["pk"]["S"].startswith(keys.MEDIA_PREFIX)]
        last = response.get("LastEvaluatedKey")
        return Page(records, last is not None, json.dumps(last) if last else None)

    async def ping(self) -> None:
        await self._client.describe_table(TableName=self._table)

    async def _list_records(
        self, index: str, partition: str, limit: int, after: str | None, filter: ListFilter
    ) -> Page:
        pk_name, sk_name = INDEXES[index]

        def start(position: str) -> dict[str, Any]:
            media_id = position.rpartition("#")[2]
            return {**_media_key(media_id), pk_name: {"S": partition}, sk_name: {"S": position}}

        items, has_more = await self._query(index, partition, limit, after, filter, start)
        records = [from_item(item) for item in items]
        return Page(records, has_more, sort_key(records[-1]) if records else None)

    async def _list_tag_items(
        self, index: str | None, partition: str, limit: int, after: str | None, filter: ListFilter
    ) -> Page:
        pk_name, sk_name = INDEXES[index] if index else ("pk", "sk")

        def start(position: str) -> dict[str, Any]:
            tag = partition.rpartition("#")[2]
            key = keys.key(keys.tag(tag), position)
            return key if index is None else {**key, pk_name: {"S": partition}, sk_name: {"S": position}}

        items, has_more = await self._query(index, partition, limit, after, filter, start)
        ids = [item["media_id"]["S"] for item in items]
        found = await self.get_many(ids)
        # A record can vanish between the two reads (purged): skip it, keep the cursor moving.
        records = [found[media_id] for media_id in ids if media_id in found]
        last = items[-1]["sk"]["S"] if items else None
        return Page(records, has_more, last)

    async def _query(
        self,
        index: str | None,
        partition: str,
        limit: int,
        after: str | None,
        filter: ListFilter,
        start_key: Any,
    ) -> tuple[list[dict[str, Any]], bool]:
        pk_name, sk_name = INDEXES[index] if index else ("pk", "sk")
        names = {"#p": pk_name}
        values: dict[str, Any] = {":p": {"S": partition}}
        condition = "#p = :p"
        low = filter.created_after.isoformat() if filter.created_after else None
        # '#~' sorts after '#<any ULID>': the bound includes items created at that very instant.
        high = filter.created_before.isoformat() + "#~" if filter.created_before else None
        if low is not None or high is not None:
            names["#s"] = sk_name
            if low is not None and high is not None:
                values[":lo"], values[":hi"] = {"S": low}, {"S": high}
                condition += " AND #s BETWEEN :lo AND :hi"
            elif low is not None:
                values[":lo"] = {"S": low}
                condition += " AND #s >= :lo"
            else:
                values[":hi"] = {"S": high}
                condition += " AND #s <= :hi"
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        if index:
            request["IndexName"] = index
        if after is not None:
            request["ExclusiveStartKey"] = start_key(after)
        return await read_page(self._client, request, limit=limit)
