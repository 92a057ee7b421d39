"""DynamoSocialStore: users, friendships, requests and blocks, in the media table.

    pk=USER#<u>  sk=PROFILE      the user exists (written on their first authenticated call)
    pk=USER#<a>  sk=REL#<b>      how A stands with B: REQUESTED | INCOMING | FRIENDS | BLOCKED
      gsi1pk=RELSTATE#<a>#<state>  gsi1sk=<b>   lists a user's friends or incoming requests

One item per direction, written together in a transaction, so both sides always agree; a block
is one-sided (A's item says BLOCKED) and hides in both directions because readers check both.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from infra.aws import dynamo_keys as keys
from infra.aws.dynamo_batch import batch_get
from infra.aws.dynamo_paging import read_page
from services.core.ports import FriendshipState, Relations


def _key(user: str, other: str) -> dict[str, Any]:
    return keys.key(keys.user(user), keys.relation(other))


def _item(user: str, other: str, state: FriendshipState) -> dict[str, Any]:
    return {
        **_key(user, other),
        "state": {"S": state.value},
        "gsi1pk": {"S": keys.relation_state(user, state.value)},
        "gsi1sk": {"S": other},
    }


class DynamoSocialStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    async def touch_user(self, user_id: str) -> None:
        await self._client.put_item(
            TableName=self._table,
            Item={**keys.key(keys.user(user_id), keys.PROFILE), "user_id": {"S": user_id}},
        )

    async def user_exists(self, user_id: str) -> bool:
        response = await self._client.get_item(
            TableName=self._table, Key=keys.key(keys.user(user_id), keys.PROFILE)
        )
        return "Item" in response

    async def state(self, user_id: str, other: str) -> FriendshipState:
        mine, theirs = await self._pair(user_id, other)
        if FriendshipState.BLOCKED in (mine, theirs):
            return FriendshipState.BLOCKED
        return mine or FriendshipState.NONE

    async def request(self, user_id: str, other: str) -> None:
        await self._write(
            _item(user_id, other, FriendshipState.REQUESTED), _item(other, user_id, FriendshipState.INCOMING)
        )

    async def befriend(self, user_id: str, other: str) -> None:
        await self._write(
            _item(user_id, other, FriendshipState.FRIENDS), _item(other, user_id, FriendshipState.FRIENDS)
        )

    async def unfriend(self, user_id: str, other: str) -> None:
        for a, b in ((user_id, other), (other, user_id)):
            await self._delete_unless_blocked(a, b)

    async def block(self, user_id: str, other: str) -> None:
        await self._client.put_item(
            TableName=self._table, Item=_item(user_id, other, FriendshipState.BLOCKED)
        )
        await self._delete_unless_blocked(other, user_id)

    async def relations(self, user_id: str, others: set[str]) -> Relations:
        wanted = [_key(user_id, other) for other in others] + [_key(other, user_id) for other in others]
        friends: set[str] = set()
        blocked: set[str] = set()
        for item in await self._batch_get(wanted):
            owner = item["pk"]["S"].removeprefix(keys.USER_PREFIX)
            target = item["sk"]["S"].removeprefix(keys.REL_PREFIX)
            state = item["state"]["S"]
            if state == FriendshipState.BLOCKED.value:
                blocked.add(target if owner == user_id else owner)
            elif state == FriendshipState.FRIENDS.value and owner == user_id:
                friends.add(target)
        return Relations(friends=frozenset(friends - blocked), blocked=frozenset(blocked))

    async def list_related(
        self, user_id: str, state: FriendshipState, *, limit: int, after: str | None
    ) -> tuple[list[str], bool]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi1",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "gsi1pk"},
            "ExpressionAttributeValues": {":p": {"S": keys.relation_state(user_id, state.value)}},
        }
        if after is not None:
            request["ExclusiveStartKey"] = {
                **_key(user_id, after),
                "gsi1pk": {"S": keys.relation_state(user_id, state.value)},
                "gsi1sk": {"S": after},
            }
        items, more = await read_page(self._client, request, limit=limit)
        return [item["gsi1sk"]["S"] for item in items], more

    async def _pair(self, user_id: str, other: str) -> tuple[FriendshipState | None, FriendshipState | None]:
        found = {
            (item["pk"]["S"], item["sk"]["S"]): FriendshipState(item["state"]["S"])
            for item in await self._batch_get([_key(user_id, other), _key(other, user_id)])
        }
        mine = found.get((keys.user(user_id), keys.relation(other)))
        return mine, found.get((keys.user(other), keys.relation(user_id)))

    async def _write(self, *items: dict[str, Any]) -> None:
        await self._client.transact_write_items(
            TransactItems=[{"Put": {"TableName": self._table, "Item": item}} for item in items]
        )

    async def _delete_unless_blocked(self, user_id: str, other: str) -> None:
        try:
            await self._client.delete_item(
                TableName=self._table,
                Key=_key(user_id, other),
                ConditionExpression="attribute_not_exists(#state) OR #state <> :blocked",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":blocked": {"S": FriendshipState.BLOCKED.value}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    async def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await batch_get(self._client, self._table, keys)
