"""uvicorn's websockets-sansio protocol from the inside: reached only through the fence in
infra/http/ws_protocol.py, which imports this module only on the uvicorn versions it was tested
with. Everything here leans on uvicorn's internals: the hooks the protocol calls on itself
(start_keepalive, stop_keepalive, handle_pong, handle_connect, keepalive_timeout, pause_writing,
resume_writing, connection_lost), the attributes it keeps (queue, writable, pending_ping_payload,
ping_sent_at, conn, transport) and its module path.

The WebSocket protocol the API runs under uvicorn: uvicorn's websockets-sansio protocol, made
cheaper per connection and given the two things subscriptions at scale need.

- Idle connections are cheap (docs/realtime.md has the figures). An idle subscriber holds its
  connection for hours, so what each one keeps is what 1,000 of them cost: instead of an
  asyncio.Queue (three deques and an Event, ~3 KiB) and an Event per connection, a list and a
  future only while someone waits; the handshake's request and response headers are dropped
  once the handshake is done.
- A send that need not wait does not suspend: the ASGI extension `SEND_TEXT_NOW` writes a text
  frame at once and says whether it could. The shared fan-out (subscriptions/fanout.py) writes
  one event to 1,000 sockets in one pass, as `websockets.broadcast` does, instead of 1,000
  coroutine chains through the ASGI middleware.
- A client that stops reading is cut off: when the transport's buffer stays over its high-water
  mark (the kernel's buffers are full too) for `send_timeout_s`, the connection is aborted and
  the app sees a disconnect, which ends its subscriptions. One timer per stall, not per send.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import weakref
from typing import Any, cast

from uvicorn._types import ASGIReceiveEvent
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame
from websockets.protocol import State

from infra.http.ws_protocol import SEND_TEXT_NOW, text_frame_header

log = logging.getLogger("mediagraph.websocket")


class _Inbox:
    """What uvicorn's protocol uses of its asyncio.Queue (put_nowait, get, empty). uvicorn pauses
    reading after each message, so few items ever wait here."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[ASGIReceiveEvent] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: ASGIReceiveEvent) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> ASGIReceiveEvent:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Gate:
    """What uvicorn's protocol uses of its asyncio.Event for "writable" (set, clear, wait)."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = True
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        if not self._open:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return True


_KEEPALIVES: weakref.WeakKeyDictionary[Config, _Keepalive] = weakref.WeakKeyDictionary()


class _Keepalive:
    """uvicorn's keepalive pings, for every connection of a server from one periodic timer
    rather than a timer or two per connection (~0.5 KiB each, and idle sockets are many). A
    connection is pinged once `interval` has passed since its last ping, and failed when a ping
    stays unanswered for `timeout`: within a tenth of a period of uvicorn's own timing."""

    def __init__(self, interval: float, timeout: float | None) -> None:
        self.interval = interval
        self.timeout = timeout
        # Ten sweeps per period: each pings only the connections that are due, so connections
        # opened over a second are pinged over a second, not in one burst that delays events.
        self.tick = (min(interval, timeout) if timeout else interval) / 10
        self.connections: set[MediagraphWebSocketProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, connection: MediagraphWebSocketProtocol) -> None:
        self.connections.add(connection)
        if self._timer is None:
            self._timer = connection.loop.call_later(self.tick, self._sweep, connection.loop)

    def discard(self, connection: MediagraphWebSocketProtocol) -> None:
        self.connections.discard(connection)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for connection in list(self.connections):
            if connection.pending_ping_payload is not None:
                if self.timeout is not None and now - connection.ping_sent_at >= self.timeout:
                    self.connections.discard(connection)
                    connection.keepalive_timeout()
            elif now - connection.ping_sent_at >= self.interval:
                connection.ping_now()
        self._timer = loop.call_later(self.tick, self._sweep, loop) if self.connections else None


class MediagraphWebSocketProtocol(WebSocketsSansIOProtocol):
    send_timeout_s: float = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.queue = _Inbox()  # type: ignore[assignment]  # the part of asyncio.Queue uvicorn uses
        self.writable = _Gate()  # type: ignore[assignment]  # the part of asyncio.Event uvicorn uses
        self.stall_timer: asyncio.TimerHandle | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            # The app task is created but has not run yet: it sees the extension.
            extensions = cast(dict[str, Any], self.scope["extensions"])
            extensions[SEND_TEXT_NOW] = self.send_text_now
        # The scope has its own copy of the headers. The handshake parser keeps the request
        # alive as long as the connection (a local of websockets' parser generator): keep it
        # empty.
        event.headers.clear()
        self.request = None  # type: ignore[assignment]

    def start_keepalive(self) -> None:
        # Called right after the handshake's response is written: its headers are done with.
        self.response = None  # type: ignore[assignment]
        keepalive = self._keepalive()
        if keepalive is not None:
            self.ping_sent_at = self.loop.time()  # the first ping one interval from now
            keepalive.add(self)

    def stop_keepalive(self) -> None:
        keepalive = self._keepalive()
        if keepalive is not None:
            keepalive.discard(self)
        self.pending_ping_payload = None

    def ping_now(self) -> None:
        """uvicorn's send_keepalive_ping, without the timers it schedules (the sweep is the timer)."""
        if self.close_sent or self.transport.is_closing():
            return
        self.pending_ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(self.pending_ping_payload)
        self.transport.write(b"".join(self.conn.data_to_send()))

    def handle_pong(self, event: Frame) -> None:
        if self.pending_ping_payload is not None and bytes(event.data) == self.pending_ping_payload:
            self.last_ping_rtt = self.loop.time() - self.ping_sent_at
            self.pending_ping_payload = None

    def _keepalive(self) -> _Keepalive | None:
        if self.ping_interval is None or self.ping_interval <= 0:
            return None
        # One sweep per server: its connections share the uvicorn Config.
        sweep = _KEEPALIVES.get(self.config)
        if sweep is None:
            sweep = _KEEPALIVES[self.config] = _Keepalive(self.ping_interval, self.ping_timeout)
        return sweep

    def send_text_now(self, data: bytes) -> bool:
        """Write `data` (UTF-8) as one text frame now. False while the buffer is full."""
        if self.disconnected or self.close_sent or self.conn.state is not State.OPEN:
            raise ClientDisconnected()
        if not self.writable.is_set():
            return False
        if self.conn.extensions:  # e.g. permessage-deflate: websockets frames it
            self.conn.send_text(data)
            self.transport.write(b"".join(self.conn.data_to_send()))
        else:
            # A server's unfragmented, unmasked text frame (RFC 6455 5.2): what websockets would
            # write, without a Frame object per subscriber per event.
            self.transport.write(text_frame_header(len(data)) + data)
        return True

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.stall_timer is None:
            self.stall_timer = self.loop.call_later(self.send_timeout_s, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.stall_timer is not None:
            self.stall_timer.cancel()
            self.stall_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stall_timer is not None:
            self.stall_timer.cancel()
            self.stall_timer = None
        super().connection_lost(exc)

    def _stalled(self) -> None:
        self.stall_timer = None
        if not self.disconnected:
            log.warning("websocket client stopped reading; disconnecting it")
            # Its buffers are full: a close frame would never reach it. connection_lost tells
            # the app it disconnected, and wakes every send waiting to write.
            self.transport.abort()
