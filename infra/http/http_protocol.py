"""The HTTP/1.1 protocol the API runs under uvicorn: uvicorn's httptools protocol with limits on
request heads and a read deadline (docs/security.md).

uvicorn takes request heads of any size and any number of headers (the audit sent 8 to 16 MiB of
headers, and 5,000 headers), and waits for a half-sent request for ever. Here:

- A head larger than `max_head_bytes` (request line and headers), one header line larger than
  `max_line_bytes`, or more than `max_headers` headers: 431, and the connection is closed. The
  size is counted as bytes arrive, before the parser has buffered them, so a client cannot make
  the process hold more than the limit (plus one read) for it.
- A request whose head and body have not all arrived `read_timeout_s` after its first byte (or a
  connection that sends nothing for that long): 408 (nothing, for a connection that never sent a
  byte) and the connection is closed. Idle keep-alive connections between requests remain
  uvicorn's `timeout_keep_alive`; an upgraded WebSocket is the WebSocket protocol's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_HEAD_END = b"\r\n\r\n"
LINGER_S = 2.0


class _Refused(Exception):
    """Raised from a parser callback: httptools stops parsing and uvicorn calls send_400_response,
    which sends our status instead."""


class GuardedHttpProtocol(HttpToolsProtocol):
    max_line_bytes = 16 * 1024
    max_head_bytes = 64 * 1024
    max_headers = 100
    read_timeout_s = 30.0

    _deadline: asyncio.TimerHandle | None = None
    _refusal: tuple[int, str, str] | None = None
    _in_head = True  # bytes arriving belong to a request head
    _head_bytes = 0
    _tail = b""  # the last bytes of the previous read: a head's end may straddle two reads
    _header_count = 0
    _received = False  # some byte of the current request arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return  # answered and closing: whatever else comes is dropped unparsed
        if self._deadline is None:
            self._arm()  # the next request on a kept-alive connection
        self._received = True
        if self._in_head:
            window = self._tail + data
            end = window.find(_HEAD_END)
            counted = len(data) if end < 0 else end + len(_HEAD_END) - len(self._tail)
            self._head_bytes += max(counted, 0)
            self._tail = window[-(len(_HEAD_END) - 1) :]
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, "request headers too large", "HEADERS_TOO_LARGE")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        if self._deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.max_line_bytes:
            self._refusal = (431, "request line too long", "HEADERS_TOO_LARGE")
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refusal = (431, f"more than {self.max_headers} request headers", "TOO_MANY_HEADERS")
            raise _Refused
        if len(name) + len(value) + 4 > self.max_line_bytes:
            self._refusal = (431, "request header line too long", "HEADERS_TOO_LARGE")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._tail = b""
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = _HeadWithBody(cycle, self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        # The whole request is here: what follows on this connection is the next one.
        self._disarm()
        self._received = False
        self._in_head = True
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # from here on the WebSocket protocol owns the connection
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, message, reason = self._refusal
        self._refusal = None
        self._refuse(status, message, reason)

    def _refuse(self, status: int, message: str, reason: str) -> None:
        """Answer `status` with a GraphQL-shaped error and close, unless a response has begun."""
        self._refusal = (status, message, reason)
        self._disarm()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
            if cycle.response_started:
                self.transport.close()
                return
        body = json.dumps(
            {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT", "reason": reason}}]}
        ).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        # A lingering close: closing with the client's bytes unread would reset the connection
        # and could destroy the answer before the client reads it. Half-close instead, drop what
        # still arrives (data_received), and close when the client does, or after LINGER_S.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if not self._received:
            self.transport.close()  # a connection that never sent a byte: nobody to answer
            return
        self._refuse(408, f"request not received within {self.read_timeout_s:g} s", "READ_TIMEOUT")


class _HeadWithBody:
    """A response's transport, as its RequestResponseCycle sees it: the head is held until the
    body's first write and the two leave in one (uvloop: one writev).

    uvicorn writes the head and the body of every response separately: two sends, two TCP
    segments (the socket is TCP_NODELAY), and a client that waits for the whole answer is woken
    twice (docs/performance.md). A head whose body does not follow in the same event-loop turn
    (a streamed response) is sent alone at the end of that turn; interim responses (100 Continue)
    and everything else pass straight through."""

    __slots__ = ("_cycle", "_head", "_head_seen", "_loop", "_transport")

    def __init__(self, cycle: Any, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._cycle = cycle
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        if not self._head_seen and self._cycle.response_started:
            # The cycle sets response_started just before it writes the head.
            self._head_seen = True
            self._head = data
            self._loop.call_soon(self._flush)
            return
        head, self._head = self._head, None
        if head is None:
            self._transport.write(data)
        else:
            self._transport.writelines((head, data))

    def _flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def http_protocol(
    *, max_line_bytes: int, max_head_bytes: int, max_headers: int, read_timeout_s: float
) -> type[GuardedHttpProtocol]:
    """The protocol class for uvicorn's `http` setting, with this deployment's limits."""
    return type(
        "MediagraphHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "max_line_bytes": max_line_bytes,
            "max_head_bytes": max_head_bytes,
            "max_headers": max_headers,
            "read_timeout_s": read_timeout_s,
        },
    )
