"""The WebSocket protocol the API runs under (infra/http/ws_protocol.py), over real sockets with
uvicorn and the websockets client: the write-now extension, clients that stop reading, and
keepalive pings from one sweep."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

from infra.http.ws_protocol import SEND_TEXT_NOW, text_frame_header
from infra.settings import Settings
from subscriptions import fanout
from tests.servers import serving_small_buffers

pytestmark = pytest.mark.integration


class EchoApp:
    """Accepts, then on "flood" writes with SEND_TEXT_NOW until the socket's buffer is full;
    records what it saw."""

    def __init__(self) -> None:
        self.send_now: Callable[[bytes], bool] | None = None
        self.refused_at: int | None = None  # frames written before SEND_TEXT_NOW said "full"
        self.disconnected = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        self.send_now = scope["extensions"].get(SEND_TEXT_NOW)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnected.set()
                return
            if message.get("text") == "hello" and self.send_now is not None:
                self.send_now("hello to you ✓".encode())
            elif message.get("text") == "flood" and self.send_now is not None:
                written = 0
                while self.send_now(b"x" * 4096):
                    written += 1
                self.refused_at = written


def serving(app: EchoApp, settings: Settings, **options: Any) -> AbstractAsyncContextManager[int]:
    return serving_small_buffers(app, settings, lifespan="off", **options)


def protocol_settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, jwt_secret="x" * 32, **overrides)


def test_the_fan_out_and_the_server_name_the_extension_alike() -> None:
    assert fanout.SEND_TEXT_NOW == SEND_TEXT_NOW


async def test_a_frame_written_now_reaches_the_client() -> None:
    app = EchoApp()
    async with serving(app, protocol_settings()) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), 5) == "hello to you ✓"
    assert app.send_now is not None


async def test_a_client_that_stops_reading_is_cut_off_after_the_send_timeout() -> None:
    app = EchoApp()
    async with serving(app, protocol_settings(ws_send_timeout_s=0.3)) as port:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        ws = await connect(f"ws://127.0.0.1:{port}/", sock=sock, max_queue=1, ping_interval=None)
        try:
            await ws.send("flood")
            # The write-now path said "full" once the buffers filled (rather than buffering
            # without bound), and the server let the connection go after the timeout.
            await asyncio.wait_for(app.disconnected.wait(), 10)
            assert app.refused_at is not None
        finally:
            ws.transport.abort()


async def test_a_client_that_reads_is_not_cut_off() -> None:
    app = EchoApp()
    async with (
        serving(app, protocol_settings(ws_send_timeout_s=0.3)) as port,
        connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws,
    ):
        for _ in range(20):
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 5) == "hello to you ✓"
            await asyncio.sleep(0.05)
        assert not app.disconnected.is_set()


async def answers_pings(ws: ClientConnection, seconds: float) -> bool:
    """True if the connection is still open after `seconds` (the client library answers pings)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.wait_closed(), seconds)
    return ws.close_code is None


def parse_server_frames(data: bytes) -> list[Frame]:
    """The frames in `data`, parsed one after the other by websockets' own parser (a search for
    a byte would also match it inside a ping's random payload)."""
    stream = StreamReader()
    stream.feed_data(data)
    stream.feed_eof()
    frames: list[Frame] = []
    while stream.buffer:  # a truncated frame raises EOFError
        parser = Frame.parse(stream.read_exact, mask=False)
        try:
            while True:
                next(parser)
        except StopIteration as done:
            frames.append(done.value)
    return frames


def test_the_frame_parser_is_not_fooled_by_a_close_opcode_inside_a_ping_payload() -> None:
    ping = Frame(Opcode.PING, b"\x88\x02\x03\xf3").serialize(mask=False, extensions=[])
    close = Frame(Opcode.CLOSE, Close(1011, "").serialize()).serialize(mask=False, extensions=[])
    frames = parse_server_frames(ping + close)
    assert [frame.opcode for frame in frames] == [Opcode.PING, Opcode.CLOSE]
    assert frames[0].data == b"\x88\x02\x03\xf3"
    assert Close.parse(frames[1].data).code == 1011


async def test_keepalive_keeps_answering_clients_and_drops_silent_ones() -> None:
    app = EchoApp()
    # Pings every 0.3 s; an answer may take up to 1 s (a loaded CI machine pauses for a while).
    options = {"ws_ping_interval": 0.3, "ws_ping_timeout": 1.0}
    async with serving(app, protocol_settings(), **options) as port:
        async with connect(f"ws://127.0.0.1:{port}/", ping_interval=None) as answering:
            assert await answers_pings(answering, 2.5)  # pinged ~8 times meanwhile
            assert not app.disconnected.is_set()
        app.disconnected.clear()

        # A peer that never answers: the server fails the connection (1011) and lets it go.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        try:
            received = await asyncio.wait_for(reader.read(-1), 10)  # until the server closes
        finally:
            writer.close()
        frames = parse_server_frames(received.split(b"\r\n\r\n", 1)[1])
        assert frames[0].opcode is Opcode.PING  # it was pinged ...
        assert frames[-1].opcode is Opcode.CLOSE  # ... then closed, with nothing after the close
        assert Close.parse(frames[-1].data).code == 1011
        assert {frame.opcode for frame in frames[:-1]} == {Opcode.PING}
        await asyncio.wait_for(app.disconnected.wait(), 5)


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536, 70000])
async def test_frames_written_now_are_what_websockets_would_write(length: int) -> None:
    data = ("é" * length).encode()[:length]  # any bytes; the frame does not look inside
    frame = Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
    assert text_frame_header(len(data)) + data == frame
