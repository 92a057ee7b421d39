"""ApiServer: uvicorn with a shutdown that says "going away" to WebSocket clients.

uvicorn's own shutdown closes open WebSockets with 1012 (service restart). We stop accepting
first, then close every open WebSocket with 1001 (going away: reconnect, to another instance)
and mark the process as draining (/readyz answers 503), then let uvicorn finish the in-flight
HTTP requests and run the lifespan shutdown as usual.
"""

from __future__ import annotations

import logging
import socket

import uvicorn

from infra.request_log import GOING_AWAY, WebSocketRegistry

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
