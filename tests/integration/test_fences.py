"""The fences around dependencies' internals (docs/architecture.md, "Fenced internals"): each
module that reaches inside a dependency checks at import that the installed version is one it was
tested with, and otherwise falls back to the dependency's public behaviour. Here: the check itself,
that the suite runs on a tested version (the rest of the suite then tests the inside path), and
each fallback, working."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from websockets.asyncio.client import connect

from infra.aws import embedded
from infra.http import ws_protocol
from subscriptions import fanout
from tests.servers import serving_small_buffers

pytestmark = pytest.mark.integration

FENCES: list[tuple[Callable[[str | None], bool], str]] = [
    (ws_protocol.uvicorn_fits, "0.54.0"),
    (fanout.strawberry_fits, "0.341.2"),
    (embedded.moto_fits, "5.2.5"),
]


@pytest.mark.parametrize(("fits", "tested"), FENCES)
def test_a_fence_admits_the_tested_series_only(fits: Callable[[str | None], bool], tested: str) -> None:
    assert fits(tested)
    major, minor, *_ = tested.split(".")
    assert not fits(f"{major}.{int(minor) + 1}.0")  # the next minor: untested until the suite ran on it
    assert not fits(f"{int(major) + 1}.0.0")


def test_the_suite_runs_on_the_tested_versions() -> None:
    # Otherwise every other test would silently exercise the fallbacks only.
    assert ws_protocol.UVICORN_FITS and fanout.STRAWBERRY_FITS and embedded.MOTO_FITS


class PlainEcho:
    """An ASGI WebSocket app using only the ordinary send; records the extensions it was offered."""

    def __init__(self) -> None:
        self.extensions: dict[str, Any] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.extensions = dict(scope.get("extensions") or {})
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] != "websocket.disconnect":
            await send({"type": "websocket.send", "text": f"echo {message.get('text')}"})


async def test_an_untested_uvicorn_runs_uvicorns_own_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.settings import Settings

    monkeypatch.setattr(ws_protocol, "UVICORN_FITS", False)
    assert ws_protocol.websocket_protocol(10.0) == ws_protocol.PUBLIC_PROTOCOL
    app = PlainEcho()
    settings = Settings(_env_file=None, jwt_secret="x" * 32)
    async with (
        serving_small_buffers(app, settings, lifespan="off") as port,
        connect(f"ws://127.0.0.1:{port}/") as ws,
    ):
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), 10) == "echo hello"
    assert app.extensions is not None and ws_protocol.SEND_TEXT_NOW not in app.extensions


async def test_an_untested_strawberry_runs_each_subscription_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    async def strawberrys_own(self: object, operation: Any) -> None:
        ran.append(operation.id)

    monkeypatch.setattr(BaseGraphQLTransportWSHandler, "run_operation", strawberrys_own)
    monkeypatch.setattr(fanout, "STRAWBERRY_FITS", False)
    handler = object.__new__(fanout.SharedTransportWSHandler)
    group = fanout.FanOut(queue_size=10)
    shareable = "subscription { mediaEvents { mediaId } }"
    assert fanout.share_key(shareable, None, None, "alice") is not None  # would be shared if it fit
    handler.view = type("View", (), {"fanout": group})()
    handler.context = type("Context", (), {"principal": "alice"})()
    handler.websocket = type("Socket", (), {"ws": object()})()
    operation = type(
        "Operation", (), {"id": "1", "query": shareable, "variables": None, "operation_name": None}
    )()
    await handler.run_operation(operation)
    assert ran == ["1"] and group.groups == 0


def test_an_untested_moto_runs_the_plain_threaded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "MOTO_FITS", False)
    with embedded.moto_server() as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        name = f"fence-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name)
        # moto's backends are per process: other tests' buckets may be listed too.
        assert name in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


def test_moto_copies_a_table_once_per_transaction_and_still_rolls_back(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto's own TransactWriteItems copies the table once per item naming it (embedded.py).
    from moto.dynamodb.models.table import Table

    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"fence-{uuid.uuid4().hex[:12]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    copies: list[object] = []
    deepcopy = copy.deepcopy

    def counting(obj: Any, memo: Any = None) -> Any:
        if isinstance(obj, Table):
            copies.append(obj)
        return deepcopy(obj, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)  # what embedded.py's copy calls

    def put(pk: str, condition: str | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": name, "Item": {"pk": {"S": pk}}}
        if condition:
            put["ConditionExpression"] = condition
        return {"Put": put}

    dynamodb.transact_write_items(TransactItems=[put("a"), put("b"), put("c")])
    assert len(copies) == 1  # three items, one table: one copy (moto's own takes three)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[put("d"), put("e"), put("a", "attribute_not_exists(pk)")]
        )
    assert len(copies) == 2
    stored = {item["pk"]["S"] for item in dynamodb.scan(TableName=name, ConsistentRead=True)["Items"]}
    assert stored == {"a", "b", "c"}  # d and e rolled back with the failed condition on a
    dynamodb.delete_table(TableName=name)
