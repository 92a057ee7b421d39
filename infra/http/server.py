"""ApiServer: uvicorn with a shutdown that says "going away" to WebSocket clients.

uvicorn's own shutdown closes open WebSockets with 1012 (service restart). We stop accepting
first, then close every open WebSocket with 1001 (going away: reconnect, to another instance)
and mark the process as draining (/readyz answers 503), then let uvicorn finish the in-flight
HTTP requests and run the lifespan shutdown as usual.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn

from infra.http.request_log import GOING_AWAY, WebSocketRegistry
from infra.http.ws_protocol import websocket_protocol
from infra.settings import WebSocketServerConfig

log = logging.getLogger("mediagraph.api")


class ApiServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # idempotent: uvicorn closes them again
        registry = getattr(getattr(self.config.app, "state", None), "websockets", None)
        if isinstance(registry, WebSocketRegistry):
            log.info("closing websockets", extra={"count": len(registry), "close_code": GOING_AWAY})
            await registry.close_all(GOING_AWAY)
        await super().shutdown(sockets)


def server_config(
    app: Any, websockets: WebSocketServerConfig, *, host: str, port: int, **options: Any
) -> uvicorn.Config:
    """How every API server here runs: `mediagraph serve`, `dev`, the tests and the benchmarks."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        # Client addresses come from MEDIAGRAPH_TRUSTED_PROXIES (infra/http/client_ip.py), not uvicorn.
        proxy_headers=False,
        ws=websocket_protocol(websockets.send_timeout_s),
        # A message over the limit closes the socket with 1009 before it is buffered.
        ws_max_size=websockets.max_message_bytes,
        **options,
    )
