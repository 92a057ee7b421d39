"""Shutdown answers every request it accepted, over real sockets: 60 requests sent while the
event loop is busy (queued by the kernel, or accepted and not yet read) when shutdown begins
each get a whole HTTP response, none a reset."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn

from infra.aws.embedded import free_port
from infra.http.server import ApiServer

pytestmark = pytest.mark.integration
REQUESTS = 60


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


async def test_every_request_sent_before_shutdown_is_answered() -> None:
    port = free_port()
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    config.load()
    server = ApiServer(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    # Blocking calls: the loop gets no turn, so nothing of these is accepted or read before
    # shutdown begins (SIGTERM arriving while the process is busy).
    sockets = []
    for _ in range(REQUESTS):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        sockets.append(sock)
    await server.shutdown()
    responses = await asyncio.gather(*(asyncio.to_thread(_read_all, sock) for sock in sockets))
    for response in responses:
        status = response.split(b"\r\n", 1)[0]
        assert status == b"HTTP/1.1 200 OK" or (
            status.startswith(b"HTTP/1.1 503") and b"retry-after" in response.lower()
        ), response
        assert response.endswith(b"ok") or b"503" in status
