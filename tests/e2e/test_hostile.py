"""The hostile corpus (tests/hostile.py) against the real server: every document, malformed body
and WebSocket message gets its documented answer, /healthz answers between them, and nothing
of it reaches the log as an error or a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from infra.settings import Settings
from tests.client import WsClient
from tests.conftest import isolated_settings
from tests.hostile import BODIES, DOCUMENTS, WS_MESSAGES, Hostile

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    # Rate limits off: every document must reach the parser and validation (the rate limits
    # have their own tests).
    yield from isolated_settings(moto_endpoint, redis_url, rate_limit_enabled=False)


def request_body(hostile: Hostile) -> bytes:
    body = {"query": hostile.query, **hostile.extra}
    if hostile.variables is not None:
        body["variables"] = hostile.variables
    text = json.dumps(body)
    if hostile.raw_variables is not None:  # what Python's json cannot write
        text = text[:-1] + f', "variables": {hostile.raw_variables}}}'
    return text.encode()


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    loud = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("mediagraph", "strawberry"))
    ]
    assert not loud, [(r.name, r.getMessage()) for r in loud]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_hostile_documents_get_their_codes_while_healthz_answers(
    api: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        for hostile in DOCUMENTS:
            response = await client.post(
                "/graphql", content=request_body(hostile), headers={"Content-Type": "application/json"}
            )
            assert response.status_code in (200, 400), (hostile.name, response.status_code, response.text)
            body = response.json()
            errors = body.get("errors") or []
            assert {error["extensions"]["code"] for error in errors} == {hostile.code}, (hostile.name, body)
            assert not any((body.get("data") or {}).values()), (hostile.name, body)  # nothing executed
            if hostile.variable is not None:
                assert all(error["extensions"].get("variable") == hostile.variable for error in errors), body
            assert (await client.get("/healthz")).status_code == 200
    no_errors_logged(caplog)
    refused = [
        r for r in caplog.records if r.name == "mediagraph.graphql" and r.getMessage() == "request refused"
    ]
    assert refused and all(r.levelno == logging.INFO for r in refused)


@pytest.mark.parametrize(("name", "raw"), BODIES, ids=[name for name, _ in BODIES])
async def test_malformed_bodies_are_400_with_a_graphql_error(
    api: str, caplog: pytest.LogCaptureFixture, name: str, raw: bytes
) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        response = await client.post("/graphql", content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (name, response.status_code, response.text)
        error = response.json()["errors"][0]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "reason": "MALFORMED_REQUEST"}, error
        assert (await client.get("/healthz")).status_code == 200
    no_errors_logged(caplog)


def ws_url(api: str) -> str:
    return api.replace("http://", "ws://") + "/graphql"


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    await ws.wait_closed()
    received = ws.protocol.close_rcvd
    assert received is not None, "closed without a close frame"
    return received.code, received.reason


@pytest.mark.parametrize("initialised", [False, True], ids=["before init", "after init"])
@pytest.mark.parametrize(("name", "frame"), WS_MESSAGES, ids=[name for name, _ in WS_MESSAGES])
async def test_malformed_websocket_messages_close_4400(
    api: str,
    token: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    name: str,
    frame: str,
    initialised: bool,
) -> None:
    if initialised and '"connection_init"' in frame and "payload" in frame:
        return  # a second init is 4429 by the protocol; the first is the "before init" case
    async with connect(ws_url(api), subprotocols=["graphql-transport-ws"], max_size=None) as ws:  # type: ignore[list-item]
        if initialised:
            await ws.send(
                json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token()}"}})
            )
            assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(frame)
        code, reason = await closed_with(ws)
    assert code == 4400 and reason, (name, code, reason)
    no_errors_logged(caplog)


async def test_a_binary_websocket_message_closes_4400(api: str) -> None:
    async with connect(ws_url(api), subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(b"\xff\xfe{}")
        assert (await closed_with(ws))[0] == 4400


async def test_variable_errors_over_websocket_name_the_variable(
    api: str, token: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with WsClient(api, token()) as client:
        for number, hostile in enumerate(
            h for h in DOCUMENTS if h.variable is not None and h.raw_variables is None
        ):
            variables: dict[str, Any] = hostile.variables or {}
            await client.send(
                {
                    "id": str(number),
                    "type": "subscribe",
                    "payload": {"query": hostile.query, "variables": variables},
                }
            )
            # A query's errors come in a `next` result (then `complete`), a subscription's in `error`.
            errors: list[dict[str, Any]] = []
            while True:
                message = await client.receive()
                assert message["type"] in ("next", "error", "complete"), (hostile.name, message)
                if message["type"] == "next":
                    errors += message["payload"]["errors"]
                    continue
                errors += message["payload"] if message["type"] == "error" else []
                break
            assert errors, hostile.name
            for error in errors:
                expected = {"code": "BAD_USER_INPUT", "variable": hostile.variable}
                assert error["extensions"] == expected, (hostile.name, error)
    no_errors_logged(caplog)
