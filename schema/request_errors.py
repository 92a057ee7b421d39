"""Errors in the request itself, where graphql-core makes them, and how errors are logged.

graphql-core coerces the variables while it builds its executor: a missing variable, null for a
non-null type, a wrong type, an Int out of range, NaN, a 5,000-digit number. It answers with a
list of errors that carry the scalar's own GraphQLError as `original_error`, which the error
shaping (schema/extensions.py) could not tell from a bug. Every error `Executor.build` returns is
about the request (the variables, the operation name), never the server: here each becomes
`BAD_USER_INPUT`, with `extensions.variable` naming the variable, at the one place they are
made, for queries, mutations and subscriptions alike.

Logging: a client's mistake is one INFO line (codes and the first message, cut short), never a
traceback; an unexpected error is logged, with its traceback, where it is masked
(`shape_error`). Strawberry's default logs every error at ERROR with a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError, SourceLocation, VariableDefinitionNode
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.relay.types import GlobalIDValueError
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from services.core.errors import MediagraphError

log = logging.getLogger("mediagraph.graphql")
_MESSAGE_CHARS = 200


def request_error(error: GraphQLError) -> GraphQLError:
    """`error` as the client's mistake: BAD_USER_INPUT, naming the variable when it is about one."""
    extensions: dict[str, Any] = {"code": "BAD_USER_INPUT"}
    for node in error.nodes or ():
        if isinstance(node, VariableDefinitionNode):
            extensions["variable"] = node.variable.name.value
            break
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class RequestErrorsExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, whose build-time errors (variables, operation name) are the client's."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        built = super().build(*args, **kwargs)
        if isinstance(built, list):
            return [request_error(error) for error in built]
        return built


class ShapedError(GraphQLError):
    """A client error shaped where the document was examined (a worker process:
    schema/document_workers.py), from its formatted dict: the error shaping leaves it as it is."""

    def __init__(self, formatted: dict[str, Any]) -> None:
        # GraphQLError.__init__ derives blame nodes, source and positions, none of which a shaped
        # error has: set what it would set. An answer may carry 21 of these, and their
        # construction was the largest share of a refused document's last loop step (~4.5 µs
        # each against ~1 µs: docs/benchmarks.md, hostile input).
        message = str(formatted["message"])
        Exception.__init__(self, message)
        self.message = message
        self.cause = self.original_error = None
        self.path = self.nodes = self.source = self.positions = None
        locations = formatted.get("locations")
        self.locations = (
            [SourceLocation(location["line"], location["column"]) for location in locations]
            if locations
            else None
        )
        self.extensions = dict(formatted.get("extensions") or {})


def is_client_error(error: GraphQLError) -> bool:
    """Made from the client's request (syntax, validation, variables, a domain refusal) rather
    than raised by a bug in our code or a library under it."""
    original = error.original_error
    return (
        original is None
        # node(id:) with no global id, or with the global id of a type that is not a Node
        or isinstance(original, MediagraphError | StrawberryInputCoercionError | GlobalIDValueError)
        or (isinstance(original, ValueError | TypeError) and _is_coercion(error))
    )


def _is_coercion(error: GraphQLError) -> bool:
    # Scalar parsers raise ValueError/TypeError while graphql-core coerces literals during
    # validation ("Expected value of type ..."): the client's input. The same exception types
    # raised anywhere else (a subscription generator, a resolver) are bugs, and must stay masked.
    return error.path is None and error.message.startswith(("Variable '$", "Expected value of type"))


def log_request_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """One INFO line for the client's mistakes; unexpected errors are logged where they are masked."""
    expected = [error for error in errors if is_client_error(error)]
    if not expected:
        return
    codes = sorted({str((error.extensions or {}).get("code") or "BAD_USER_INPUT") for error in expected})
    first = expected[0].message
    log.info(
        "request refused",
        extra={
            "error_codes": codes,
            "errors": len(expected),
            "error": first if len(first) <= _MESSAGE_CHARS else first[:_MESSAGE_CHARS] + "…",
            "operation_name": getattr(execution_context, "operation_name", None),
        },
    )
