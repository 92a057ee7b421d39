"""Shared subscriptions: subscribers who would receive the same bytes share one execution.

Strawberry executes a subscription's selection set and encodes its JSON once per subscriber per
event. When many clients of a user hold the same live subscription (same document, variables
and principal), that work is identical: here the first such subscription runs it once (a
group), every event is executed and encoded once, and each member gets the encoded payload on
its own bounded queue, wrapped with its operation id. A member that falls `queue_size` events
behind gets RATE_LIMITED and completes, like a slow consumer of the bus; the others go on.

Only live-only operations are shared: joining a group half way must give what a fresh
subscription would. `mediaEvents` without `since` qualifies; a replay (`since`) or
`uploadCompleted` (which first answers with the current state) does not, and runs alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

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
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import GraphQL
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

log = logging.getLogger("mediagraph.fanout")

# Root subscription fields that may be shared, and the argument that makes one a replay.
SHAREABLE = {"mediaEvents": "since"}

_CLOSE = object()
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


@dataclass(eq=False, slots=True)
class _Member:
    queue: asyncio.Queue[object]
    overflowed: bool = False

    def offer(self, item: object) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


@dataclass(eq=False, slots=True)
class _Group:
    members: set[_Member] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class FanOut:
    """The groups of one process."""

    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._groups: dict[Key, _Group] = {}

    @property
    def groups(self) -> int:
        return len(self._groups)

    @contextlib.asynccontextmanager
    async def join(
        self, key: Key, schema: BaseSchema, operation: Operation[Any, Any], context: object, root: object
    ) -> AsyncIterator[_Member]:
        member = _Member(asyncio.Queue(maxsize=self._queue_size))
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
            group.task = asyncio.create_task(self._run(key, group, schema, operation, context, root))
        group.members.add(member)
        try:
            yield member
        finally:
            group.members.discard(member)
            if not group.members and self._groups.get(key) is group:
                del self._groups[key]
                if group.task is not None:
                    group.task.cancel()

    async def _run(
        self,
        key: Key,
        group: _Group,
        schema: BaseSchema,
        operation: Operation[Any, Any],
        context: object,
        root: object,
    ) -> None:
        """Execute once, encode once, offer to every member: ("next"|"error", encoded payload)."""
        encode = operation.handler.view.encode_json
        try:
            source = await schema.stream(
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
                        self._offer(group, ("error", encode([error.formatted for error in errors])))
                        return
                    payload: dict[str, object] = {"data": result.data}
                    if result.errors:
                        payload["errors"] = [error.formatted for error in result.errors]
                    if result.extensions:
                        payload["extensions"] = result.extensions
                    self._offer(group, ("next", encode(payload)))
        except Exception:
            log.exception("shared subscription failed")
        finally:
            # Members still here complete; a new subscriber starts a new group.
            if self._groups.get(key) is group:
                del self._groups[key]
            self._offer(group, _CLOSE)

    @staticmethod
    def _offer(group: _Group, item: object) -> None:
        for member in group.members:
            member.offer(item)
            if item is _CLOSE and member.overflowed:
                # Full queue: its reader stops at overflow anyway; make room for the end mark.
                with contextlib.suppress(asyncio.QueueFull):
                    member.queue.put_nowait(_CLOSE)


class SharedTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """graphql-transport-ws with shared execution of identical live subscriptions."""

    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        fanout: FanOut | None = getattr(self.view, "fanout", None)
        principal = getattr(self.context, "principal", None)
        who = repr(principal)  # user and roles: what the selection may depend on
        key = (
            share_key(operation.query, operation.variables, operation.operation_name, who)
            if fanout is not None and principal is not None
            else None
        )
        if fanout is None or key is None:
            await super().run_operation(operation)
            return
        websocket = getattr(self.websocket, "ws", None)
        if websocket is None:  # not Starlette: no raw send; run alone
            await super().run_operation(operation)
            return
        head = '{"id":' + json.dumps(operation.id) + ',"type":"'
        try:
            async with fanout.join(key, self.schema, operation, self.context, self.root_value) as member:
                while True:
                    if member.overflowed and member.queue.empty():
                        break
                    item = await member.queue.get()
                    if item is _CLOSE:
                        break
                    kind, payload = cast("tuple[str, str]", item)  # ("next"|"error", encoded)
                    await websocket.send_text(f'{head}{kind}","payload":{payload}}}')
                    if kind == "error":
                        operation.completed = True
                        self.operations.pop(operation.id, None)
                        return
            if member.overflowed:
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
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.operations.pop(operation.id, None)


def install(view: GraphQL[Any, Any], queue_size: int) -> None:
    """Make `view` share identical live subscriptions (its handler reads `view.fanout`)."""
    view.graphql_transport_ws_handler_class = SharedTransportWSHandler
    setattr(view, "fanout", FanOut(queue_size))  # noqa: B010  # an attribute GraphQL does not declare
