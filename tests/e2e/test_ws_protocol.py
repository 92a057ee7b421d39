"""graphql-transport-ws conformance and limits, with a raw WebSocket client: every close code of
the protocol, ping/pong, message size, subscriptions per connection, connections per user and
per client address, and a token that expires while the socket is open."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import jwt as pyjwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from infra.settings import Settings
from subscriptions.ws_guard import Refusal
from tests.client import WsClient
from tests.conftest import isolated_settings

pytestmark = pytest.mark.e2e

MAX_MESSAGE = 2048
EVENTS = "subscription { mediaEvents { eventId } }"


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(
        moto_endpoint,
        redis_url,
        ws_init_timeout_s=0.5,
        ws_max_message_bytes=MAX_MESSAGE,
        ws_max_subscriptions=2,
        ws_max_connections_per_user=2,
        ws_max_connections_per_address=4,
    )


def ws_url(api: str) -> str:
    return api.replace("http://", "ws://") + "/graphql"


async def raw(api: str) -> ClientConnection:
    return await connect(ws_url(api), subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; the close code and reason it gave."""
    await ws.wait_closed()  # the client reads (and drops) anything still arriving
    received = ws.protocol.close_rcvd
    assert received is not None, "closed without a close frame"
    return received.code, received.reason


async def initialised(api: str, token: str) -> ClientConnection:
    ws = await raw(api)
    await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    return ws


async def test_ping_is_answered_with_pong(api: str, token: Callable[..., str]) -> None:
    ws = await initialised(api, token("alice"))
    await send(ws, {"type": "ping", "payload": {"n": 1}})
    assert json.loads(await ws.recv())["type"] == "pong"
    await ws.close()


@pytest.mark.parametrize(
    "message", ["not json", json.dumps({"type": "nonsense"}), json.dumps({"id": "1", "type": "subscribe"})]
)
async def test_a_bad_message_closes_4400(api: str, token: Callable[..., str], message: str) -> None:
    ws = await initialised(api, token("alice"))
    await ws.send(message)
    assert (await closed_with(ws))[0] == 4400


async def test_subscribe_before_ack_closes_4401(api: str) -> None:
    ws = await raw(api)
    await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": EVENTS}})
    assert (await closed_with(ws))[0] == 4401


def _forged(**claims: object) -> str:
    return pyjwt.encode({"sub": "alice", "iss": "mediagraph", "aud": "mediagraph-api", **claims}, "x" * 32)


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, Refusal.MISSING),
        ("", Refusal.MISSING),
        ("Token abc", Refusal.NOT_BEARER),
        ("Bearer ", Refusal.NOT_BEARER),
        ("Bearer not-a-token", Refusal.INVALID),
        # Expired AND wrongly signed: only a token whose signature holds is called expired.
        (f"Bearer {_forged(iat=1, exp=2)}", Refusal.INVALID),
        ("Bearer {expired}", Refusal.EXPIRED),
    ],
)
async def test_no_or_a_bad_token_closes_4403_saying_which_case(
    api: str, token: Callable[..., str], authorization: str | None, reason: Refusal
) -> None:
    payload = (
        {} if authorization is None else {"Authorization": authorization.format(expired=token(ttl_s=-60))}
    )
    ws = await raw(api)
    await send(ws, {"type": "connection_init", "payload": payload})
    assert await closed_with(ws) == (4403, reason.value)


async def test_no_init_within_the_timeout_closes_4408(api: str) -> None:
    ws = await raw(api)
    assert (await closed_with(ws))[0] == 4408


async def test_a_duplicate_id_closes_4409(api: str, token: Callable[..., str]) -> None:
    ws = await initialised(api, token("alice"))
    for _ in range(2):
        await send(ws, {"id": "same", "type": "subscribe", "payload": {"query": EVENTS}})
    assert (await closed_with(ws))[0] == 4409


async def test_a_second_init_closes_4429(api: str, token: Callable[..., str]) -> None:
    ws = await initialised(api, token("alice"))
    await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token('alice')}"}})
    assert (await closed_with(ws))[0] == 4429


async def test_a_message_over_the_size_limit_closes_1009(api: str, token: Callable[..., str]) -> None:
    ws = await initialised(api, token("alice"))
    query = EVENTS + " " * MAX_MESSAGE
    await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": query}})
    assert (await closed_with(ws))[0] == 1009


async def test_subscriptions_per_connection_are_limited(api: str, token: Callable[..., str]) -> None:
    async with WsClient(api, token("alice")) as ws:
        first, second = await ws.subscribe(EVENTS), await ws.subscribe(EVENTS)
        third = await ws.subscribe(EVENTS)
        message = await ws.receive()
        assert message["id"] == third and message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        # Completing one makes room again.
        await ws.send({"id": first, "type": "complete"})
        fourth = await ws.subscribe(EVENTS)
        await ws.expect_nothing(0.3)
        assert {second, fourth} and fourth != third


async def test_connections_per_user_are_limited(api: str, token: Callable[..., str]) -> None:
    first = await initialised(api, token("alice"))
    second = await initialised(api, token("alice"))
    third = await raw(api)
    await send(third, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token('alice')}"}})
    assert await closed_with(third) == (4403, Refusal.TOO_MANY.value)
    # Another user is not affected, and a closed connection gives its slot back.
    other = await initialised(api, token("bob"))
    await first.close()
    again = await initialised(api, token("alice"))
    for ws in (second, other, again):
        await ws.close()


async def test_connections_per_address_are_limited(api: str, token: Callable[..., str]) -> None:
    sockets = [await initialised(api, token(user)) for user in ("u1", "u2", "u3", "u4")]
    with pytest.raises(InvalidStatus) as refused:
        await raw(api)
    assert refused.value.response.status_code == 403
    await sockets.pop().close()
    sockets.append(await initialised(api, token("u5")))
    for ws in sockets:
        await ws.close()


async def test_a_token_that_expires_closes_the_socket(api: str, token: Callable[..., str]) -> None:
    ws = await initialised(api, token("alice", ttl_s=2))
    await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": EVENTS}})
    code, reason = await closed_with(ws)
    assert (code, reason) == (4403, "Token expired")
    # A fresh token opens a new connection at once.
    fresh = await initialised(api, token("alice"))
    await fresh.close()


async def test_the_legacy_graphql_ws_protocol_is_not_served(api: str) -> None:
    ws = await connect(ws_url(api), subprotocols=["graphql-ws"])  # type: ignore[list-item]
    assert ws.subprotocol is None
    assert await closed_with(ws) == (4406, "Subprotocol not acceptable")
