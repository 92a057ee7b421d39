"""The HTTP protocol the API runs under (infra/http/http_protocol.py), driven byte by byte with a
transport that records each write: a response's head and body leave in one write (uvicorn wrote
them apart: two segments, two wake-ups of the client), and a streamed response's head still
leaves before its body is ready."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from infra.http.http_protocol import http_protocol

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """Each write (writelines: one, as uvloop sends it with one writev) as the client would get it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.wrote = asyncio.Event()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        self.wrote.set()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connect(app: Any) -> tuple[Any, RecordingTransport]:
    protocol_class = http_protocol(
        max_line_bytes=16 * 1024, max_head_bytes=64 * 1024, max_headers=100, read_timeout_s=30
    )
    config = uvicorn.Config(app, http=protocol_class, log_config=None, lifespan="off")
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def test_a_response_leaves_in_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    protocol, transport = connect(app)
    protocol.data_received(REQUEST)
    await asyncio.gather(*protocol.tasks)
    (response,) = transport.writes
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\nok")
    # The connection stays usable: the next request's answer is one write as well.
    protocol.data_received(REQUEST)
    await asyncio.gather(*protocol.tasks)
    assert len(transport.writes) == 2 and transport.writes[1].endswith(b"\r\n\r\nok")


async def test_a_streamed_response_head_leaves_before_its_body() -> None:
    more = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await more.wait()  # the body is not ready yet
        await send({"type": "http.response.body", "body": b"late"})

    protocol, transport = connect(app)
    protocol.data_received(REQUEST)
    await transport.wrote.wait()
    (head,) = transport.writes
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    more.set()
    await asyncio.gather(*protocol.tasks)
    assert transport.writes[1:] == [b"4\r\nlate\r\n0\r\n\r\n"]  # chunked: no length was given
