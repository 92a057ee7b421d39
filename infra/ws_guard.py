"""WebSocket limits besides the protocol's own: connections per user and per client address,
message size, and a token that expires while the socket is open.

The counts live in this process (one registry per API process): behind a load balancer with N
processes a user may hold up to N * the limit. That bounds what one client can pin on one
process, which is what protects its memory; a global count would need Redis on every connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

from graphql import GraphQLError
from starlette.types import Message, Receive, Send

from subscriptions.fanout import SharedTransportWSHandler

log = logging.getLogger("mediagraph.websocket")

MESSAGE_TOO_BIG = 1009  # RFC 6455
CLIENT_STALLED = 1008  # policy violation: the client does not read what it subscribed to
TOKEN_EXPIRED = 4403  # graphql-transport-ws "Forbidden", with the reason "Token expired"


class ConnectionLimits:
    """Open WebSockets per user and per client address, in this process."""

    def __init__(self, per_user: int, per_address: int) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self._users: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()
        self._held: dict[int, str] = {}  # connection key -> user

    def acquire_address(self, address: str) -> bool:
        if self._addresses[address] >= self.per_address:
            return False
        self._addresses[address] += 1
        return True

    def release_address(self, address: str) -> None:
        _decrement(self._addresses, address)

    def acquire_user(self, key: int, user: str) -> bool:
        if key in self._held:
            return True
        if self._users[user] >= self.per_user:
            return False
        self._users[user] += 1
        self._held[key] = user
        return True

    def release_user(self, key: int) -> None:
        user = self._held.pop(key, None)
        if user is not None:
            _decrement(self._users, user)


def _decrement(counter: Counter[str], name: str) -> None:
    counter[name] -= 1
    if counter[name] <= 0:
        del counter[name]


def limit_message_size(receive: Receive, send: Send, max_bytes: int) -> Receive:
    """`receive`, except that a message over `max_bytes` closes the socket with 1009 and looks
    like a disconnect to the app (which then cleans up its subscriptions)."""

    async def limited() -> Message:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            size = len(text.encode()) if text is not None else len(message.get("bytes") or b"")
            if size > max_bytes:
                with contextlib.suppress(Exception):
                    await send(
                        {"type": "websocket.close", "code": MESSAGE_TOO_BIG, "reason": "Message too big"}
                    )
                return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
        return message

    return limited


class StalledReader:
    """A client that stops reading fills its TCP window, then the server's buffers, and every
    send to it waits forever. Each send gets `timeout_s`: past it the connection counts as
    stalled, its messages are dropped, and the app is told the client disconnected, so it ends
    every subscription of the socket (bounded memory; uvicorn then closes the transport)."""

    def __init__(self, receive: Receive, send: Send, timeout_s: float) -> None:
        self._receive = receive
        self._send = send
        self._timeout_s = timeout_s
        self.stalled = asyncio.Event()

    async def send(self, message: Message) -> None:
        if self.stalled.is_set():
            return
        if message["type"] != "websocket.send":
            await self._send(message)
            return
        # A loop timer, neither a task (wait_for) nor asyncio.timeout: the fan-out steps sends by
        # hand in another task (subscriptions/fanout.py), and a send that does not block must
        # not suspend. The blocked send itself is cancelled with its subscription.
        timer = asyncio.get_running_loop().call_later(self._timeout_s, self._stall)
        try:
            await self._send(message)
        finally:
            timer.cancel()

    def _stall(self) -> None:
        if not self.stalled.is_set():
            log.warning("websocket client stopped reading; disconnecting it")
            self.stalled.set()

    async def receive(self) -> Message:
        if self.stalled.is_set():
            return {"type": "websocket.disconnect", "code": CLIENT_STALLED}
        received = asyncio.ensure_future(self._receive())
        stalled = asyncio.ensure_future(self.stalled.wait())
        try:
            await asyncio.wait({received, stalled}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            received.cancel()
            raise
        finally:
            stalled.cancel()
        if received.done():
            return received.result()
        received.cancel()
        return {"type": "websocket.disconnect", "code": CLIENT_STALLED}


class GuardedTransportWSHandler(SharedTransportWSHandler):
    """graphql-transport-ws (with shared fan-out) that ends the connection when the token it
    was opened with expires, and gives back its per-user slot when it ends."""

    _expiry: asyncio.Task[None] | None = None

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            limits: ConnectionLimits | None = getattr(self.view, "limits", None)
            if limits is not None:
                limits.release_user(id(self.context))

    async def handle_subscribe(self, message: Any) -> None:
        # Strawberry's own refusal carries no extensions.code; every error here has one.
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and limit is not None
            and len(self.operations) >= limit
        ):
            error = GraphQLError(
                f"at most {limit} subscriptions per connection",
                extensions={"code": "RATE_LIMITED", "reason": "TOO_MANY_SUBSCRIPTIONS"},
            )
            await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
            return
        await super().handle_subscribe(message)

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        principal = getattr(self.context, "principal", None)
        expires_at = getattr(principal, "expires_at", None)
        if self.connection_acknowledged and expires_at is not None and self._expiry is None:
            self._expiry = asyncio.create_task(self._close_at(expires_at))

    async def _close_at(self, expires_at: float) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        # Closing ends every subscription of the socket; the client reconnects with a fresh token.
        with contextlib.suppress(Exception):
            await self.websocket.close(code=TOKEN_EXPIRED, reason="Token expired")


async def refuse_handshake(send: Send) -> None:
    """Refuse before accepting: the client sees HTTP 403 and no socket is held."""
    await send({"type": "websocket.close", "code": 1008})
