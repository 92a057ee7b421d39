"""Observability of GraphQL operations: a span per operation, Prometheus metrics by root field,
subscription start/end log lines, and what the access log needs (operation, user, error codes).

Listed before ErrorCodes in the schema: hooks exit in reverse order, so the codes it counts are
the shaped ones. Every label is bounded by construction, whatever documents clients send: the
`operation` label is one root field of the schema, "multiple" for a document selecting several
(their combinations are not bounded), "invalid" for a document refused before execution (parse or
validation) and "unknown" when there is no operation; `code` is one of the codes the service
defines, else "OTHER". The operation name the client chose, and the root fields of a document
selecting several, go to the logs only.

Where the observations go is not this module's business: the API's composition root installs an
OperationRecorder (infra/observability/operations.py: Prometheus, OpenTelemetry, the access log),
so the schema layer imports nothing from infra. Until one is installed (a schema run bare, in a
unit test) spans go to OpenTelemetry's global tracer and the rest nowhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Protocol

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import FieldNode, GraphQLSchema, get_operation_ast
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, Tracer
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from services.core.errors import MediagraphError

log = logging.getLogger("mediagraph.graphql")
UNKNOWN = "unknown"
INVALID = "invalid"
MULTIPLE = "multiple"
OTHER_CODE = "OTHER"


def _defined_codes(error_class: type[MediagraphError] = MediagraphError) -> frozenset[str]:
    codes = {error_class.code}
    for subclass in error_class.__subclasses__():
        codes |= _defined_codes(subclass)
    return frozenset(codes)


def code_label(code: object) -> str:
    """An error code as a label value: one the service defines (shaped errors carry nothing else),
    else "OTHER", so that no code from anywhere can add series."""
    return code_labels([code])[0]


# The codes found defined so far: a class, once defined, stays so. Walked again only for a code
# not among them (an error class imported since, as infra's bus errors are; or a code nobody
# defines), so import order cannot leave one out and a refused document's 21 errors cost no walk.
_known_codes: set[str] = set()


def code_labels(codes: list[object]) -> list[str]:
    """`code_label` of each (an answer may carry 21 errors)."""
    known = _known_codes
    if not all(isinstance(code, str) and code in known for code in codes):
        known.update(_defined_codes())
    return [code if isinstance(code, str) and code in known else OTHER_CODE for code in codes]


def operation_label(executed: bool, root_fields: list[str]) -> str:
    if not executed:
        return INVALID
    if len(root_fields) > 1:
        return MULTIPLE
    return root_fields[0] if root_fields else UNKNOWN


class OperationRecorder(Protocol):
    """What one GraphQL operation's observations are handed to. Every label value it gets is
    bounded (see above); `operation`, `name` and `user` are for logs only."""

    def tracer(self) -> Tracer: ...

    def errors_sent(self, operation_label: str, codes: list[str]) -> None: ...

    def answered(self, operation_label: str, op_type: str, elapsed_s: float) -> None: ...

    def subscription_started(self, operation_label: str, op_type: str) -> None: ...

    def subscription_ended(self, operation_label: str) -> None: ...

    def tell_access_log(
        self, *, op_type: str, operation: str, name: str | None, user: str | None, codes: list[str]
    ) -> None:
        """The HTTP request's access log line names the operation (a no-op off HTTP)."""


class _Unrecorded:
    def tracer(self) -> Tracer:
        return trace.get_tracer("mediagraph")

    def errors_sent(self, operation_label: str, codes: list[str]) -> None:
        pass

    def answered(self, operation_label: str, op_type: str, elapsed_s: float) -> None:
        pass

    def subscription_started(self, operation_label: str, op_type: str) -> None:
        pass

    def subscription_ended(self, operation_label: str) -> None:
        pass

    def tell_access_log(
        self, *, op_type: str, operation: str, name: str | None, user: str | None, codes: list[str]
    ) -> None:
        pass


_recorder: OperationRecorder = _Unrecorded()


def record_operations_with(recorder: OperationRecorder) -> None:
    """Called by the API's composition root, once per process (every app of it records alike)."""
    global _recorder
    _recorder = recorder


class Observability(SchemaExtension):
    def __init__(self) -> None:
        self._subscription: str | None = None
        self._streamed = False
        self._executed = False
        self._codes: list[str] = []
        self._described: tuple[object, tuple[str, list[str], str | None]] | None = None

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        with _recorder.tracer().start_as_current_span("graphql.operation") as span:
            try:
                yield
            finally:
                if not self._streamed:
                    self._collect(self.execution_context.result)
                op_type, fields, name = self._describe()
                operation = ",".join(fields) or UNKNOWN  # spans and logs: bounded per request
                label = operation_label(self._executed, fields)
                span.update_name(f"graphql.{op_type} {operation}")
                span.set_attribute("graphql.operation.type", op_type)
                span.set_attribute("graphql.operation.name", name or operation)
                if self._codes:
                    span.set_status(Status(StatusCode.ERROR, ",".join(sorted(set(self._codes)))))
                    _recorder.errors_sent(label, code_labels(list(self._codes)))
                elapsed = time.perf_counter() - started
                if self._subscription is not None:
                    _recorder.subscription_ended(self._subscription)
                    log.info("subscription ended", extra=self._fields(operation, name, elapsed))
                else:
                    _recorder.answered(label, op_type, elapsed)
                    _recorder.tell_access_log(
                        op_type=op_type, operation=operation, name=name, user=self._user(), codes=self._codes
                    )

    def on_execute(self) -> Iterator[None]:
        self._executed = True
        yield
        op_type, fields, name = self._describe()
        if op_type == "subscription" and self._subscription is None:
            # A subscription selects exactly one root field (validation refuses more).
            self._subscription = operation_label(True, fields)
            _recorder.subscription_started(self._subscription, op_type)
            log.info("subscription started", extra=self._fields(",".join(fields), name, None))

    def on_stream_result(self, result: object) -> Iterator[None]:
        self._streamed = True
        yield
        self._collect(result)

    def _collect(self, result: object) -> None:
        if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
            for error in result.errors:
                code = (error.extensions or {}).get("code", "INTERNAL_SERVER_ERROR")
                self._codes.append(str(code))

    def _describe(self) -> tuple[str, list[str], str | None]:
        """(operation type, the schema's root fields it selects, the client's operation name)."""
        if self._described is None or self._described[0] is not self.execution_context.graphql_document:
            self._described = (self.execution_context.graphql_document, self._read_operation())
        return self._described[1]

    def _read_operation(self) -> tuple[str, list[str], str | None]:
        context = self.execution_context
        document = context.graphql_document
        if document is None:
            return UNKNOWN, [], None
        definition = get_operation_ast(document, context.operation_name)
        if definition is None:
            return UNKNOWN, [], None
        schema: GraphQLSchema = context.schema._schema
        root = schema.get_root_type(definition.operation)
        known = {*(root.fields if root is not None else {}), "__typename"}
        # Only fields the schema has: an invalid document must not mint new label values.
        fields = sorted(
            {
                node.name.value
                for node in definition.selection_set.selections
                if isinstance(node, FieldNode) and node.name.value in known
            }
        )
        name = definition.name.value if definition.name else None
        return definition.operation.value, fields, name

    def _user(self) -> str | None:
        principal = getattr(self.execution_context.context, "principal", None)
        user_id = getattr(principal, "user_id", None)
        return user_id if isinstance(user_id, str) else None

    def _fields(self, operation: str, name: str | None, elapsed: float | None) -> dict[str, object]:
        fields: dict[str, object] = {"operation": operation, "operation_name": name, "user": self._user()}
        if elapsed is not None:
            fields["duration_ms"] = round(elapsed * 1000, 2)
            fields["error_codes"] = self._codes or None
        return {key: value for key, value in fields.items() if value is not None}
