"""Error shaping: every error leaves with an `extensions.code`; unexpected ones are masked.

Domain errors (services.core.errors) keep their message and code. Errors graphql-core raises for
the request itself (syntax, validation, variable coercion) become BAD_USER_INPUT. Anything else
is a bug: clients see "Internal server error" and a request id, the log has the traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.error import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from schema.request_errors import ShapedError, is_client_error
from services.core.errors import MediagraphError

log = logging.getLogger("mediagraph.graphql")
# graphql-core's hints name fields, arguments, types and enum values the client did not ask for.
_SUGGESTION = re.compile(r" Did you mean [^?]*\?")


def shape_error(error: GraphQLError, request_id: str, *, hide_suggestions: bool = False) -> GraphQLError:
    if isinstance(error, ShapedError):
        return error  # shaped already, by the same rules (schema/document_workers.py)
    original = error.original_error
    if isinstance(original, MediagraphError):
        extensions = {"code": original.code, **original.extensions}
        message = original.message
    elif original is None or is_client_error(error):
        # Our own request errors keep what they carry (RequestErrorsExecutor: the variable).
        extensions = {"code": "BAD_USER_INPUT", **(error.extensions or {})}
        message = error.message
    else:
        log.error(
            "unexpected error",
            exc_info=(type(original), original, original.__traceback__),
            extra={"request_id": request_id, "path": error.path},
        )
        extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        message = "Internal server error"
    if hide_suggestions:
        message = _SUGGESTION.sub("", message)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Shapes the errors of queries and mutations (on_operation) and of every result a
    subscription or other stream sends (on_stream_result), each exactly once."""

    def __init__(self) -> None:
        self._streamed = False

    def on_operation(self) -> Iterator[None]:
        yield
        if not self._streamed:
            self._shape(self.execution_context.result)

    def on_stream_result(self, result: object) -> Iterator[None]:
        self._streamed = True
        self._shape(result)
        yield

    def _shape(self, result: object) -> None:
        if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
            context = self.execution_context.context
            request_id = getattr(context, "request_id", "-")
            # Production: suggestions would map the schema for a client without introspection.
            hide = bool(getattr(context, "production", False))
            result.errors = [shape_error(error, request_id, hide_suggestions=hide) for error in result.errors]
