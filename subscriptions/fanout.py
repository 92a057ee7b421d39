"""Shared subscriptions: subscribers who would receive the same bytes share one execution.

Strawberry executes a subscription's selection set and encodes its JSON once per subscriber per
event. When many clients of a user hold the same live subscription (same document, variables
and principal), that work is identical: here the first such subscription runs it once (a
group), every event is executed and encoded once, and each member gets the encoded payload on
its own bounded queue, wrapped with its operation id. A member that falls `queue_size` events
behind gets RATE_LIMITED and completes, like a slow consumer of the bus; the others go on.
Under `mediagraph serve` the group writes each member's frame at once (the protocol's
SEND_TEXT_NOW, infra/http/ws_protocol.py), so an event costs one execution, one encoding and one
write per subscriber, and no coroutine or task switch per subscriber.

Only live-only operations are shared: joining a group half way must give what a fresh
subscription would. `mediaEvents` without `since` qualifies; a replay (`since`) or
`uploadCompleted` (which first answers with the current state) does not, and runs alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import json
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
)
from graphql.error import GraphQLSyntaxError
from starlette.types import Message
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

log = logging.getLogger("mediagraph.fanout")

# The ASGI extension a server offers to write a text frame without awaiting:
# scope["extensions"][SEND_TEXT_NOW](utf8) -> True once written, False when the socket's buffer
# is full (then the ordinary ASGI send waits for it). infra/http/ws_protocol.py offers it under the
# same name.
SEND_TEXT_NOW = "mediagraph.websocket.send_text_now"

# The fence around Strawberry's internals. SharedTransportWSHandler replaces the handler's
# `run_operation` and uses what Strawberry keeps inside it: the handler's `view`, `context`,
# `root_value`, `operations` and `websocket.ws`, and the operation's `handler.schema`, `id`,
# `query`, `variables`, `operation_name`, `completed` and `send_operation_message`. None of that is
# Strawberry's public API, so sharing runs only on the Strawberry series the suite ran on
# (pyproject.toml admits only these); on another every subscription runs alone, as Strawberry
# runs it: the same messages, one execution per subscriber.
TESTED_STRAWBERRY = ("0.341",)
_OPERATION_PARTS = ("send_operation_message", "handler", "query", "variables", "operation_name", "completed")


def strawberry_fits(version: str | None = None) -> bool:
    """Whether `version` (default: the installed Strawberry) is one the shared execution was
    tested with, and the handler still has the method it replaces."""
    version = version or importlib.metadata.version("strawberry-graphql")
    if ".".join(version.split(".")[:2]) not in TESTED_STRAWBERRY:
        return False
    operation_parts = set(getattr(Operation, "__slots__", ())) | set(vars(Operation))
    return callable(getattr(BaseGraphQLTransportWSHandler, "run_operation", None)) and all(
        part in operation_parts for part in _OPERATION_PARTS
    )


STRAWBERRY_FITS = strawberry_fits()

# Root subscription fields that may be shared, and the argument that makes one a replay.
SHAREABLE = {"mediaEvents": "since"}

Key = tuple[str, str, str, str | None]


@functools.lru_cache(maxsize=256)
def _document(query: str) -> DocumentNode | None:
    try:
        return parse(query)
    except GraphQLSyntaxError:
        return None


def share_key(
    query: str, variables: dict[str, Any] | None, operation_name: str | None, who: str
) -> Key | None:
    """The group of this operation, or None if it must run alone."""
    document = _document(query)
    if document is None:
        return None
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [node for node in operations if node.name and node.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.SUBSCRIPTION:
        return None
    selections = operations[0].selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode) or selections[0].directives:
        return None
    root = selections[0]
    replay_argument = SHAREABLE.get(root.name.value)
    if replay_argument is None:
        return None
    for argument in root.arguments or ():
        if argument.name.value != replay_argument:
            continue
        if not isinstance(argument.value, VariableNode):
            return None
        if (variables or {}).get(argument.value.name.value) is not None:
            return None
    try:
        encoded_variables = json.dumps(variables or {}, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return (who, query, encoded_variables, operation_name)


def message_tail(kind: str, payload: bytes) -> bytes:
    """What follows a member's `{"id":<id>,"type":"` in a graphql-transport-ws message, UTF-8."""
    return kind.encode() + b'","payload":' + payload + b"}"


class _Member:
    """One subscriber of a group: writes each event at once when its socket can take it,
    otherwise keeps at most `limit` waiting behind one send in progress, and ends with the
    reason it ended."""

    __slots__ = ("backlog", "ended", "finishing", "head", "limit", "pending", "send", "send_now")

    def __init__(
        self,
        operation_id: str,
        send: Callable[[Message], Coroutine[Any, Any, Any]],  # an ASGI send
        send_now: Callable[[bytes], bool] | None,
        limit: int,
    ) -> None:
        self.head = ('{"id":' + json.dumps(operation_id) + ',"type":"').encode()
        self.send = send
        self.send_now = send_now
        self.limit = limit
        self.backlog: deque[bytes] | None = None  # made when a send has to wait
        self.pending: asyncio.Task[None] | None = None
        self.finishing: str | None = None
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def deliver(self, tail: bytes) -> bool:
        """Send this member's message: its own head (the operation id), then the `tail` that
        every member shares (`message_tail`): one concatenation, no encoding, per member.
        True if it was written at once; False if it waits (or was not sent at all)."""
        if self.ended.done() or self.finishing is not None:
            return False
        data = self.head + tail
        if self.pending is None:
            return self._start(data)
        if self.backlog is None or len(self.backlog) < self.limit:
            if self.backlog is None:
                self.backlog = deque()
            self.backlog.append(data)
        else:
            self._end("overflow")  # bounded: a client that does not read is cut off
        return False

    def finish(self, reason: str) -> None:
        """End once everything already accepted has been sent."""
        if self.finishing is None:
            self.finishing = reason
        if self.pending is None and not self.backlog:
            self._end(self.finishing)

    def _start(self, data: bytes) -> bool:
        try:
            if self.send_now is not None and self.send_now(data):
                return True  # written: nothing to wait for
            # The socket's buffer is full (or the server has no SEND_TEXT_NOW): a task waits
            # for it to drain, while later events queue behind it.
            message = {"type": "websocket.send", "text": data.decode()}
            self.pending = asyncio.ensure_future(self.send(message))
        except Exception:
            self._end("gone")
            return False
        self.pending.add_done_callback(self._sent)
        return False

    def _sent(self, task: asyncio.Task[None]) -> None:
        self.pending = None
        if task.cancelled() or task.exception() is not None:
            self._end("gone")
            return
        while self.backlog and self.pending is None and not self.ended.done():
            self._start(self.backlog.popleft())
        if self.finishing is not None:
            self.finish(self.finishing)

    def _end(self, reason: str) -> None:
        self.backlog = None
        if not self.ended.done():
            self.ended.set_result(reason)


@dataclass(eq=False, slots=True)
class _Group:
    members: set[_Member] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class FanOut:
    """The groups of one process."""

    def __init__(self, queue_size: int, on_pass: Callable[[int, int], None] | None = None) -> None:
        self._queue_size = queue_size
        self._groups: dict[Key, _Group] = {}
        # Told after each event's pass: (members written at once, members whose write waits).
        self._on_pass = on_pass

    @property
    def groups(self) -> int:
        return len(self._groups)

    @property
    def members(self) -> int:
        """Subscriptions joined to a group, over every group."""
        return sum(len(group.members) for group in self._groups.values())

    def join(
        self,
        key: Key,
        operation: Operation[Any, Any],
        send: Callable[[Message], Coroutine[Any, Any, Any]],
        send_now: Callable[[bytes], bool] | None,
        context: object,
        root: object,
    ) -> _Member:
        """A new member of the group `key` (started if there is none). Plain calls, not a context
        manager: an idle subscription holds as little as it can (docs/realtime.md)."""
        member = _Member(operation.id, send, send_now, self._queue_size)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
            group.task = asyncio.create_task(self._run(key, group, operation, context, root))
        group.members.add(member)
        return member

    def leave(self, key: Key, member: _Member) -> None:
        if member.pending is not None:
            member.pending.cancel()
        group = self._groups.get(key)
        if group is None or member not in group.members:
            return  # its group ended; a newer one under the same key is not its own
        group.members.discard(member)
        if not group.members:
            del self._groups[key]
            if group.task is not None:
                group.task.cancel()

    async def _run(
        self, key: Key, group: _Group, operation: Operation[Any, Any], context: object, root: object
    ) -> None:
        """Execute once, encode once, deliver to every member."""
        view = operation.handler.view

        def encode(value: object) -> bytes:
            encoded = view.encode_json(value)
            return encoded if isinstance(encoded, bytes) else encoded.encode()

        ending = "complete"
        try:
            source = await operation.handler.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                root_value=root,
                operation_name=operation.operation_name,
            )
            async with contextlib.aclosing(source):
                async for result in source:
                    if isinstance(result, PreExecutionError) or not isinstance(result, ExecutionResult):
                        errors = getattr(result, "errors", None) or [GraphQLError("unsupported result")]
                        self._deliver(group, "error", encode([error.formatted for error in errors]))
                        ending = "error"
                        return
                    payload: dict[str, object] = {"data": result.data}
                    if result.errors:
                        payload["errors"] = [error.formatted for error in result.errors]
                    if result.extensions:
                        payload["extensions"] = result.extensions
                    self._deliver(group, "next", encode(payload))
        except Exception:
            log.exception("shared subscription failed")
        finally:
            # Members still here end; a new subscriber starts a new group.
            if self._groups.get(key) is group:
                del self._groups[key]
            for member in list(group.members):
                member.finish(ending)

    def _deliver(self, group: _Group, kind: str, payload: bytes) -> None:
        tail = message_tail(kind, payload)
        written = 0
        for member in list(group.members):
            written += member.deliver(tail)
        if self._on_pass is not None:
            self._on_pass(written, len(group.members) - written)


class SharedTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """graphql-transport-ws with shared execution of identical live subscriptions."""

    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        fanout: FanOut | None = getattr(self.view, "fanout", None)
        principal = getattr(self.context, "principal", None)
        websocket = getattr(self.websocket, "ws", None)  # Starlette's: raw text out
        key = None
        if STRAWBERRY_FITS and fanout is not None and principal is not None and websocket is not None:
            # The principal (user and roles) is all a selection may depend on besides the input.
            key = share_key(operation.query, operation.variables, operation.operation_name, repr(principal))
        if fanout is None or key is None or websocket is None:
            await super().run_operation(operation)
            return

        send_now = websocket.scope.get("extensions", {}).get(SEND_TEXT_NOW)
        member = fanout.join(key, operation, websocket.send, send_now, self.context, self.root_value)
        try:
            reason = await member.ended
        finally:
            fanout.leave(key, member)
        if reason == "gone":
            self.operations.pop(operation.id, None)
            return
        if reason == "error":  # the error message ended the operation
            operation.completed = True
            self.operations.pop(operation.id, None)
            return
        with contextlib.suppress(Exception):
            if reason == "overflow":
                await operation.send_operation_message(
                    {
                        "id": operation.id,
                        "type": "next",
                        "payload": {
                            "data": None,
                            "errors": [
                                {
                                    "message": "subscriber fell too far behind; resubscribe",
                                    "extensions": {"code": "RATE_LIMITED", "reason": "SLOW"},
                                }
                            ],
                        },
                    }
                )
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
