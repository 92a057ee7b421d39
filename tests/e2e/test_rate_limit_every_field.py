"""Every root field of Query, Mutation and Subscription draws from the caller's buckets, reads
and anonymous callers included: the schema is walked (introspected over HTTP), so a root field
added tomorrow is checked too, and one that escapes the limits fails here."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from infra.settings import Settings
from schema.rate_limits import COSTS
from tests.client import error_codes, gql
from tests.conftest import isolated_settings
from tests.schema_walk import Filler, client_schema, operation, root_fields

pytestmark = pytest.mark.e2e

MEDIA_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
BURST = 1
ALIASES = 15


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(
        moto_endpoint,
        redis_url,
        # One token per bucket, refilled once in 100 s: the second call of any field is refused.
        rate_limit_user_burst=BURST,
        rate_limit_user_per_minute=0.6,
        rate_limit_ip_burst=BURST,
        rate_limit_ip_per_minute=0.6,
        trusted_proxies="127.0.0.1",  # the tests' requests come "through a proxy" on localhost
    )


_addresses = (f"198.18.{n // 250}.{n % 250 + 1}" for n in itertools.count())


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_every_query_and_mutation_field_is_charged_even_anonymous(api: str) -> None:
    schema = await client_schema(api)  # charged too, from 127.0.0.1
    filler = Filler(media_id=MEDIA_ID, user_id="alice")
    checked = []
    for kind, name, field in root_fields(schema):
        if kind == "subscription":
            continue
        document = operation(schema, kind, name, field, filler, depth=1)
        address = next(_addresses)  # a bucket of its own
        first = await gql(api, document, headers=via(address))
        second = await gql(api, document, headers=via(address))
        assert "RATE_LIMITED" in error_codes(second), (name, second)
        assert not any((second.get("data") or {}).values()), (name, second)  # nothing executed
        if COSTS.get(name, 1) > BURST:
            assert "RATE_LIMITED" in error_codes(first), (name, first)
        checked.append(name)
    assert {"media", "node", "feed", "createUpload"} <= set(checked)


async def test_every_subscription_field_is_charged(api: str, token: Callable[..., str]) -> None:
    schema = await client_schema(api, token=token("walker"))
    filler = Filler(media_id=MEDIA_ID, user_id="alice")
    subscriptions = [(name, field) for kind, name, field in root_fields(schema) if kind == "subscription"]
    assert subscriptions
    for name, field in subscriptions:
        user = f"sub-{name}"
        url = api.replace("http://", "ws://") + "/graphql"
        async with connect(
            url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            additional_headers=via(next(_addresses)),
        ) as ws:
            await ws.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token(user)}"}})
            )
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            document = operation(schema, "subscription", name, field, filler, depth=1)
            for id_ in ("1", "2"):
                await ws.send(json.dumps({"id": id_, "type": "subscribe", "payload": {"query": document}}))
            while True:  # until the second subscription's answer
                message: dict[str, Any] = json.loads(await ws.recv())
                if message.get("id") == "2":
                    break
            assert message["type"] == "error", (name, message)
            assert [error["extensions"]["code"] for error in message["payload"]] == ["RATE_LIMITED"], message


async def test_aliased_reads_run_out_of_tokens(api: str) -> None:
    """150 anonymous requests of 15 aliased reads each, from one address: only what the bucket
    holds is served (here one token; the shipped burst is 300, i.e. 20 such requests)."""
    aliased = "{ " + " ".join(f'a{i}: media(id: "{MEDIA_ID}") {{ title }}' for i in range(ALIASES)) + " }"
    address = next(_addresses)
    answers: list[list[str]] = []
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for _ in range(150):
            response = await client.post("/graphql", json={"query": aliased}, headers=via(address))
            answers.append([error["extensions"]["code"] for error in response.json().get("errors") or []])
    # 15 tokens never fit a bucket of one: every request is refused before validation.
    assert all(codes == ["RATE_LIMITED"] for codes in answers), answers[:3]
