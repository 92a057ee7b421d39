"""WebSocket limits besides the protocol's own (message size and clients that stop reading:
infra/http/ws_protocol.py): connections per user and per client address, and a token that expires
while the socket is open.

The counts live in this process (one registry per API process): behind a load balancer with N
processes a user may hold up to N * the limit. That bounds what one client can pin on one
process, which is what protects its memory; a global count would need Redis on every connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from graphql import GraphQLError
from starlette.responses import Response
from starlette.types import Scope, Send

from schema.rate_limits import charge_text, charged_already
from subscriptions.fanout import SharedTransportWSHandler
from subscriptions.ws_messages import ws_message_problem

TOKEN_EXPIRED = 4403  # graphql-transport-ws "Forbidden", with the reason "Token expired"
FORBIDDEN = 4403
BAD_REQUEST = 4400  # graphql-transport-ws: a message the server cannot read


class Refusal(StrEnum):
    """4403 close reasons (at most 123 bytes): which case it is, never what was sent or whose."""

    MISSING = 'No token: send {"Authorization": "Bearer <token>"} in connection_init'
    NOT_BEARER = 'Authorization must be "Bearer <token>"'
    INVALID = "Invalid token"
    EXPIRED = "Token expired"
    TOO_MANY = "Too many connections for this user"


class WebSocketRefused(Exception):
    """Raised by the view's on_ws_connect: close 4403 with `reason`, a close reason a developer
    can act on (which case it is) that reveals nothing about tokens or users. Not a Strawberry
    ConnectionRejectionError, which would always close with "Forbidden"."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason.value


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


class Deadlines:
    """Calls each callback at its time (time.time() seconds) with one loop timer for them all.
    Every open socket has a token expiry; a uvloop timer each would cost ~0.6 KiB per socket."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._keys = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = math.inf

    def __len__(self) -> int:
        return len(self._callbacks)

    def add(self, when: float, callback: Callable[[], None]) -> int:
        key = next(self._keys)
        self._callbacks[key] = callback
        heapq.heappush(self._heap, (when, key))
        if len(self._heap) > 2 * len(self._callbacks) + 64:  # mostly cancelled: compact
            self._heap = [entry for entry in self._heap if entry[1] in self._callbacks]
            heapq.heapify(self._heap)
        self._arm()
        return key

    def cancel(self, key: int) -> None:
        self._callbacks.pop(key, None)

    def _arm(self) -> None:
        if not self._heap or self._heap[0][0] >= self._armed_for:
            return
        if self._timer is not None:
            self._timer.cancel()
        when = self._armed_for = self._heap[0][0]
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + max(0.0, when - time.time()), self._fire)

    def _fire(self) -> None:
        self._timer, self._armed_for = None, math.inf
        now = time.time()
        while self._heap and self._heap[0][0] <= now:
            _, key = heapq.heappop(self._heap)
            callback = self._callbacks.pop(key, None)
            if callback is not None:
                callback()
        self._arm()


class GuardedTransportWSHandler(SharedTransportWSHandler):
    """graphql-transport-ws (with shared fan-out) that ends the connection when the token it
    was opened with expires, and gives back its per-user slot when it ends."""

    _expiry: int | None = None  # in the view's Deadlines: no task or timer per idle socket
    _closing: asyncio.Task[None] | None = None

    async def shutdown(self) -> None:
        # Not an override of handle(): that would add a frame to every idle socket's stack.
        try:
            await super().shutdown()
        finally:
            if self._expiry is not None:
                self._deadlines().cancel(self._expiry)
            limits: ConnectionLimits | None = getattr(self.view, "limits", None)
            if limits is not None:
                limits.release_user(id(self.context))

    async def handle_message(self, message: Any) -> None:
        problem = ws_message_problem(message)
        if problem is not None:
            await self.websocket.close(code=BAD_REQUEST, reason=problem)
            return
        await super().handle_message(message)

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
        if self.connection_acknowledged and message["id"] not in self.operations:
            # Charged here, once per subscribe message: an identical live subscription is joined
            # by the shared fan-out without executing, so without the schema's extension.
            payload = message["payload"]
            refused = await charge_text(self.context, payload["query"], payload.get("operationName"))
            if refused is not None:
                error = GraphQLError(refused.message, extensions={"code": refused.code, **refused.extensions})
                await self.send_message({"id": message["id"], "type": "error", "payload": [error.formatted]})
                return
        marked = charged_already.set(True)  # the operation's task inherits it: not charged twice
        try:
            await super().handle_subscribe(message)
        finally:
            charged_already.reset(marked)

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except WebSocketRefused as refused:
            await self.websocket.close(code=FORBIDDEN, reason=refused.reason)
            return
        # The init timeout is cancelled by now; what it held need not live as long as the socket.
        self.connection_init_timeout_task = None
        principal = getattr(self.context, "principal", None)
        expires_at = getattr(principal, "expires_at", None)
        if self.connection_acknowledged and expires_at is not None and self._expiry is None:
            self._expiry = self._deadlines().add(expires_at, self._expired)

    def _deadlines(self) -> Deadlines:
        deadlines: Deadlines | None = getattr(self.view, "deadlines", None)
        if deadlines is None:
            deadlines = Deadlines()
            setattr(self.view, "deadlines", deadlines)  # noqa: B010  # one per view
        return deadlines

    def _expired(self) -> None:
        self._closing = asyncio.ensure_future(self._close_expired())

    async def _close_expired(self) -> None:
        # Closing ends every subscription of the socket; the client reconnects with a fresh token.
        with contextlib.suppress(Exception):
            await self.websocket.close(code=TOKEN_EXPIRED, reason=Refusal.EXPIRED.value)


async def refuse_handshake(send: Send, scope: Scope | None = None, response: Response | None = None) -> None:
    """Refuse before accepting: the client sees HTTP 403 and no socket is held. With a response,
    and a server that can send one (ASGI's websocket.http.response), the client sees that."""
    extensions = (scope or {}).get("extensions") or {}
    if response is not None and "websocket.http.response" in extensions:
        start = {"type": "websocket.http.response.start", "status": response.status_code}
        await send({**start, "headers": response.raw_headers})
        await send({"type": "websocket.http.response.body", "body": response.body})
        return
    await send({"type": "websocket.close", "code": 1008})
