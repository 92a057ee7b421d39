"""The WebSocket protocol the API runs under uvicorn: uvicorn's websockets-sansio protocol, made
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
from typing import Any, cast

from uvicorn._types import ASGIReceiveEvent
from uvicorn.config import Config
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from subscriptions.fanout import SEND_TEXT_NOW

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
        self.request = None  # type: ignore[assignment]  # the scope holds what the app needs

    def start_keepalive(self) -> None:
        # Called right after the handshake's response is written: its headers are done with.
        self.response = None  # type: ignore[assignment]
        super().start_keepalive()

    def send_text_now(self, text: str) -> bool:
        if self.disconnected or self.close_sent or not self.handshake_complete:
            raise ClientDisconnected()
        if not self.writable.is_set():
            return False
        self.conn.send_text(text.encode())
        self.transport.write(b"".join(self.conn.data_to_send()))
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


def websocket_protocol(send_timeout_s: float) -> type[MediagraphWebSocketProtocol]:
    """The protocol class for uvicorn's `ws` setting, with this deployment's stall timeout."""
    return type(
        "MediagraphWebSocketProtocol", (MediagraphWebSocketProtocol,), {"send_timeout_s": send_timeout_s}
    )
