"""A client that subscribes and never reads: the server stops sending to it, ends its
subscriptions and lets the connection go, instead of buffering for it without bound."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from infra.aws.resources import Resources
from infra.roots.app import create_app
from infra.roots.runtime import Runtime
from infra.settings import Settings
from services.core.events import MediaEvent, MediaEventType
from services.core.media import utcnow
from tests.conftest import isolated_settings
from tests.fakes import make_media
from tests.servers import serving_small_buffers

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_url, subscriber_queue_size=50, ws_send_timeout_s=0.5)


async def until(condition: Callable[[], bool], attempts: int = 600) -> bool:
    for _ in range(attempts):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def test_a_client_that_never_reads_is_disconnected(
    settings: Settings, resources: Resources, runtime: Runtime, token: Callable[..., str]
) -> None:
    app = create_app(settings)
    async with serving_small_buffers(app, settings, lifespan="on") as port:
        # A small receive buffer, and a client library that stops reading after one message.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        ws = await connect(
            f"ws://127.0.0.1:{port}/graphql",
            sock=sock,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            max_queue=1,
            ping_interval=None,
        )
        try:
            await never_reads(app, ws, runtime, token)
        finally:
            ws.transport.abort()  # the server may still hold unsent bytes for it


async def never_reads(
    app: Starlette, ws: ClientConnection, runtime: Runtime, token: Callable[..., str]
) -> None:
    """Subscribe, then never read again while events pile up."""
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token('alice')}"}})
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    query = "subscription { mediaEvents { eventId media { mediaId title } } }"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    bus = app.state.runtime.bus
    assert await until(lambda: bus.local_subscribers == 1)

    title = "x" * 2000
    published = 0
    while bus.local_subscribers and published < 5000:
        media = dataclasses.replace(make_media(b"x", owner_id="alice"), title=title)
        await runtime.bus.publish(MediaEvent(MediaEventType.CREATED, media, utcnow()))
        published += 1
        if published % 10 == 0:
            await asyncio.sleep(0.01)  # let the server's reader keep up

    # Its subscription ended and its socket is gone from the server's books: nothing is
    # held for it any more, however much is published.
    assert await until(lambda: bus.local_subscribers == 0), published
    assert await until(lambda: len(app.state.websockets) == 0)
    assert app.state.graphql.fanout.groups == 0
