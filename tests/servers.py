"""Running the real API in a test: uvicorn on a free port, and waiting for a condition."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvicorn

from infra.aws.embedded import free_port
from infra.http.server import ApiServer, server_config
from infra.roots.app import create_app
from infra.settings import Settings

# The app behind each base URL `serving` yields, while it serves: a test waits on its state.
_apps: dict[str, Any] = {}


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, dev_sign_in: bool = False) -> AsyncIterator[str]:
    """One API process-equivalent (its own app, runtime and Redis pub/sub connection) under the
    same server class `mediagraph serve` uses; yields its base URL. `dev_sign_in` as under
    `mediagraph dev`."""
    port = free_port()
    app = create_app(settings, dev_sign_in=dev_sign_in)
    server = ApiServer(server_config(app, settings.server, host="127.0.0.1", port=port, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    _apps[base] = app
    try:
        yield base
    finally:
        _apps.pop(base, None)
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


@contextlib.asynccontextmanager
async def serving_small_buffers(app: Any, settings: Settings, **options: Any) -> AsyncIterator[int]:
    """`app` under uvicorn with the API's server configuration, on a listening socket whose small
    send buffer (inherited by the accepted sockets) makes a client that does not read fill the
    server's buffers early; yields the port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(server_config(app, settings.server, host="127.0.0.1", port=port, **options))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


async def eventually(predicate: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds (a bound, not a measurement)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def listening(api: str, user_id: str, subscribers: int = 1, timeout: float = 20) -> None:
    """Until the API at `api` holds `subscribers` live event subscriptions of `user_id`, confirmed
    by Redis: an event published from then on reaches them (no sleep to let a subscription
    register)."""
    bus = _apps[api].state.runtime.bus

    async def registered() -> bool:
        return bool(bus.listening(user_id) >= subscribers)

    await eventually(registered, timeout)


async def joined(api: str, members: int, timeout: float = 20) -> None:
    """Until the API at `api` has `members` subscriptions joined to its shared executions
    (subscriptions/fanout.py): a subscription still on its way in has not joined yet."""
    fanout = _apps[api].state.graphql.fanout

    async def registered() -> bool:
        return bool(fanout.members >= members)

    await eventually(registered, timeout)
