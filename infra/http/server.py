"""ApiServer: uvicorn with a shutdown that answers every request it accepted, and says "going
away" to WebSocket clients.

uvicorn's own shutdown closes the listening sockets at once (the kernel resets connections
still in the accept queue) and closes every connection with no request in progress at once,
though its request may already be in the socket's buffer, unread (the client sees a reset).
Ours, at SIGTERM:

1. lets the event loop accept what the kernel has queued, then stops accepting;
2. closes every open WebSocket with 1001 (going away: reconnect, to another instance) and
   marks the process as draining (/readyz answers 503);
3. gives connections without a request in progress up to `idle_grace_s` to deliver one: a
   request already sent is read and answered (with `Connection: close`), not reset;
4. lets uvicorn finish the in-flight requests and run the lifespan shutdown as usual.
"""

from __future__ import annotations

import asyncio
import logging
import select
import socket
from typing import Any

import uvicorn

from infra.http.http_protocol import http_protocol
from infra.http.request_log import GOING_AWAY, WebSocketRegistry
from infra.http.ws_protocol import websocket_protocol
from infra.settings import ServerConfig

log = logging.getLogger("mediagraph.api")


class ApiServer(uvicorn.Server):
    idle_grace_s = 1.0

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._accept_queued()
        for server in self.servers:
            server.close()  # idempotent: uvicorn closes them again
        registry = getattr(getattr(self.config.app, "state", None), "websockets", None)
        if isinstance(registry, WebSocketRegistry):
            log.info("closing websockets", extra={"count": len(registry), "close_code": GOING_AWAY})
            await registry.close_all(GOING_AWAY)
        await self._let_sent_requests_arrive()
        await super().shutdown(sockets)

    async def _accept_queued(self) -> None:
        """Let the event loop accept the connections the kernel has queued (at most
        `idle_grace_s`): closing a listening socket resets those still in its queue."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.idle_grace_s
        listening = [sock.fileno() for server in self.servers for sock in server.sockets]
        while listening and loop.time() < deadline:
            queued, _, _ = select.select(listening, [], [], 0)
            if not queued:
                break
            await asyncio.sleep(0.005)
        # Accepted connections get their transport over the next turns of the loop.
        for _ in range(3):
            await asyncio.sleep(0.005)

    async def _let_sent_requests_arrive(self) -> None:
        """Wait (at most `idle_grace_s`) until every connection has a request in progress or is
        closed; those that do are told to close after their response."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.idle_grace_s
        while True:
            idle = 0
            for connection in list(self.server_state.connections):
                if not hasattr(connection, "cycle"):
                    continue  # a WebSocket: closed with 1001 above
                cycle = connection.cycle
                if cycle is None or cycle.response_complete:
                    idle += 1
                else:
                    cycle.keep_alive = False
            if not idle or loop.time() >= deadline:
                if idle:
                    log.info("closing idle connections", extra={"count": idle})
                return
            await asyncio.sleep(0.02)


def server_config(app: Any, server: ServerConfig, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """How every API server here runs: `mediagraph serve`, `dev`, the tests and the benchmarks."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        # Client addresses come from MEDIAGRAPH_TRUSTED_PROXIES (infra/http/client_ip.py), not uvicorn.
        proxy_headers=False,
        # Header size and count limits, and a deadline for slow or half-sent requests.
        http=http_protocol(
            max_line_bytes=server.max_header_line_bytes,
            max_head_bytes=server.max_header_bytes,
            max_headers=server.max_headers,
            read_timeout_s=server.read_timeout_s,
        ),
        ws=websocket_protocol(server.ws_send_timeout_s),
        # A message over the limit closes the socket with 1009 before it is buffered.
        ws_max_size=server.ws_max_message_bytes,
        **options,
    )
