"""A WebSocket client cheap enough to hold 1,000 connections in one process and not be the
bottleneck: a bare asyncio protocol that counts and timestamps whole frames as bytes arrive
(no task per message, no decoding). Enough of RFC 6455 for a benchmark: text frames out
(masked with a zero key), text/ping frames in, no fragmentation, no compression."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time


def _frame(opcode: int, payload: bytes) -> bytes:
    # Clients must mask; a zero key is a valid mask and leaves the bytes as they are.
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + b"\0\0\0\0" + payload


class CountingClient(asyncio.Protocol):
    def __init__(self) -> None:
        self.times: list[float] = []
        self.last = b""
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send_json(self, message: object) -> None:
        assert self.transport is not None
        self.transport.write(_frame(0x1, json.dumps(message).encode()))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self._buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(bytes(self._buffer[:200]).decode(errors="replace")))
                return
            del self._buffer[: end + 4]
            self._upgraded = True
            self.opened.set_result(None)
        buffer = self._buffer
        position = 0
        while len(buffer) - position >= 2:
            opcode = buffer[position] & 0x0F
            length = buffer[position + 1] & 0x7F
            start = position + 2
            if length == 126:
                if len(buffer) - position < 4:
                    break
                length = int.from_bytes(buffer[start : start + 2], "big")
                start += 2
            elif length == 127:
                if len(buffer) - position < 10:
                    break
                length = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            if len(buffer) < start + length:
                break
            if opcode == 0x1:
                self.times.append(now)
                self.last = bytes(buffer[start : start + length])
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(_frame(0xA, bytes(buffer[start : start + length])))
            position = start + length
        del buffer[:position]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before upgrade"))


async def open_client(host: str, port: int, path: str, subprotocol: str | None = None) -> CountingClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(CountingClient, host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    assert client.transport is not None
    client.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await asyncio.wait_for(client.opened, 30)
    return client
