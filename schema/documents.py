"""Parsing and validation of every operation, in one extension: the token cap, the parse and
validation caches, the document limits (schema/document_guard.py) before any validation rule,
the profile's rules, and the work done off the event loop.

Order of the work for a document the caches do not know:
1. parse, with at most `max_tokens` tokens (graphql-core stops at the first token over);
2. the document limits, one linear pass (fragments measured once each): a document over a
   limit is refused here, and no validation rule runs on it;
3. graphql-core's rules and ours (schema/limits.py), each linear once step 2 has bounded the
   pairwise comparisons of OverlappingFieldsCanBeMerged.

Where that work runs (docs/security.md, "Documents off the event loop"):
- with document workers (MEDIAGRAPH_DOCUMENT_WORKERS, on in the production profile), every
  document the caches do not know is examined in a worker process (schema/document_workers.py):
  steps 1-3, the rate-limit cost of each operation, and the shaping of the errors, which come back
  as ready GraphQL error dicts (at most `MAX_ERRORS`). The event loop only awaits; an accepted
  document comes back pickled (cheaper to load than to parse), a refused one as its errors and an
  outline of its operations. The loop holds no parser, no rule, and none of the cyclic garbage
  (tokens, visitors) they leave for the collector;
- without (development, tests): in this process, a document of more than `OFF_LOOP_CHARS`
  characters in a worker thread, a smaller one on the loop.
"""

from __future__ import annotations

import asyncio
import pickle
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from schema.document_guard import DocumentLimits, check_document
from schema.limits import EXAMINED_COST, with_metered_overlap
from schema.request_errors import ShapedError

# Off the loop above this size: ~ 150 tokens, a little more than most real operations.
OFF_LOOP_CHARS = 1024
CACHE_SIZE = 256
# A refused document is answered with at most this many errors (and a last one saying how many
# more there were): a client needs the first few, and each costs the loop to encode.
MAX_ERRORS = 20
# The bench (bench/hostile.py) measures uncached work: it turns this off in its own server.
caching = True

_Rules = tuple[type[ASTValidationRule], ...]
# Handed to Strawberry with the syntax error of a document parsed off the loop (see on_parse): a
# query, which every transport allows; its one field is no field of the schema, so metrics label
# it unknown.
_STAND_IN = parse("{ _ }")


@dataclass(slots=True)
class _Cached:
    document: DocumentNode
    errors: list[GraphQLError]
    # The rate-limit cost of each operation, in document order, for a refused document whose
    # `document` is its outline (an accepted one is measured on the document itself).
    costs: tuple[int, ...] | None = None


# (query text, rules) -> the parsed document and its validation errors; least recently used out.
_cache: OrderedDict[tuple[str, _Rules], _Cached] = OrderedDict()


def capped(errors: list[GraphQLError]) -> list[GraphQLError]:
    """At most MAX_ERRORS of `errors`, and then one saying how many more there were."""
    if len(errors) <= MAX_ERRORS:
        return errors
    return [*errors[:MAX_ERRORS], GraphQLError(f"{len(errors) - MAX_ERRORS} more errors not shown.")]


def validate(
    schema: GraphQLSchema, document: DocumentNode, rules: _Rules, limits: DocumentLimits
) -> list[GraphQLError]:
    """The document limits first; graphql-core's rules and `rules` only on a document within them."""
    verdict = check_document(document, limits)
    if verdict.errors:
        return verdict.errors
    return validate_document(schema, document, rules)


class Examined(NamedTuple):
    """A document examined in a worker process, as the event loop needs it.

    `syntax`: it did not parse (`errors` holds the one error). Else `operations` outlines it
    ((type, name) of each operation, in order) and `costs` gives each operation's rate-limit cost;
    `errors` are its validation errors, shaped and bounded (empty: accepted), and `document` is the
    pickled DocumentNode of an accepted document.

    A named tuple: the event loop unpickles one per document the caches do not know, and a tuple
    loads without a frozen dataclass's field-by-field __setstate__."""

    errors: tuple[dict[str, Any], ...]
    syntax: bool = False
    operations: tuple[tuple[str, str | None], ...] = ()
    costs: tuple[int, ...] = ()
    document: bytes | None = None


class DocumentExaminer(Protocol):
    """The worker processes, as the pipeline uses them (schema/document_workers.py)."""

    async def examine(
        self, query: str, rules: _Rules, *, production: bool, request_id: str = "-"
    ) -> Examined: ...


class DocumentsUnavailable(Exception):
    """The worker processes could not examine a document (one died, or it took too long)."""


def _outline(operations: tuple[tuple[str, str | None], ...]) -> DocumentNode:
    """A document with the operations of a refused one (type and name), each selecting `_`:
    Strawberry picks the operation and checks its type on it; nothing of it is validated or run."""
    return DocumentNode(
        definitions=tuple(
            OperationDefinitionNode(
                operation=OperationType(kind),
                name=NameNode(value=name) if name else None,
                variable_definitions=(),
                directives=(),
                selection_set=SelectionSetNode(selections=(FieldNode(name=NameNode(value="_")),)),
            )
            for kind, name in operations
        )
    )


class DocumentPipeline(SchemaExtension):
    def __init__(
        self,
        *,
        max_tokens: int,
        limits: DocumentLimits,
        rules: Sequence[type[ASTValidationRule]],
        production_rules: Sequence[type[ASTValidationRule]],
    ) -> None:
        self.max_tokens = max_tokens
        self.limits = limits
        self.rules = tuple(rules)
        self.production_rules = tuple(production_rules)
        self._large = False
        self._key: tuple[str, _Rules] | None = None
        self._cached_errors: list[GraphQLError] | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        production = getattr(context.context, "production", False)
        extra = self.production_rules if production else self.rules
        context.validation_rules = (*with_metered_overlap(tuple(context.validation_rules)), *extra)
        yield

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        query = context.query
        if context.graphql_document is None and query:
            self._key = (query, tuple(context.validation_rules))
            hit = _cache.get(self._key) if caching else None
            workers: DocumentExaminer | None = getattr(context.context, "document_workers", None)
            if hit is not None:
                _cache.move_to_end(self._key)
                context.graphql_document, self._cached_errors = hit.document, hit.errors
                if hit.costs is not None:
                    self._set_cost(hit.document, hit.costs)
            elif workers is not None:
                await self._examine_elsewhere(workers, query)
            else:
                self._large = len(query) > OFF_LOOP_CHARS
                try:
                    context.graphql_document = (
                        await asyncio.to_thread(parse, query, max_tokens=self.max_tokens)
                        if self._large
                        else parse(query, max_tokens=self.max_tokens)
                    )
                except GraphQLError as syntax_error:
                    if not self._large:
                        # Strawberry parses again in its own try and answers the syntax error
                        # as any other: a small document, parsed twice, up to the error.
                        context.graphql_document = None
                    else:
                        # A large one is not parsed again on the loop: Strawberry gets a
                        # stand-in document and the error, and answers the error (no rule runs,
                        # nothing is charged or executed).
                        context.graphql_document = _STAND_IN
                        context.pre_execution_errors = [syntax_error]
        yield

    async def _examine_elsewhere(self, workers: DocumentExaminer, query: str) -> None:
        context = self.execution_context
        production = bool(getattr(context.context, "production", False))
        request_id = str(getattr(context.context, "request_id", "-"))
        try:
            examined = await workers.examine(
                query, tuple(context.validation_rules), production=production, request_id=request_id
            )
        except DocumentsUnavailable:
            # Answered at once, never a hang: the code the retry guide says to retry with backoff
            # (docs/api.md), and the reason. The pool logged what happened.
            context.graphql_document = _STAND_IN
            context.pre_execution_errors = [
                ShapedError(
                    {
                        "message": "The document could not be checked just now; retry.",
                        "extensions": {
                            "code": "INTERNAL_SERVER_ERROR",
                            "reason": "DOCUMENT_WORKERS_UNAVAILABLE",
                            "requestId": request_id,
                        },
                    }
                )
            ]
            self._key = None  # nothing to cache
            return
        errors: list[GraphQLError] = [ShapedError(formatted) for formatted in examined.errors]
        if examined.syntax:
            context.graphql_document = _STAND_IN
            context.pre_execution_errors = errors
            self._key = None
            return
        if examined.document is not None:
            document: DocumentNode = pickle.loads(examined.document)  # noqa: S301  # our own worker's
            self._cached_errors = []
            cached = _Cached(document, [])
        else:
            document = _outline(examined.operations)
            self._cached_errors = errors
            self._set_cost(document, examined.costs)
            cached = _Cached(document, errors, examined.costs)
        context.graphql_document = document
        if caching and self._key is not None:
            _remember(self._key, cached)

    def _set_cost(self, outline: DocumentNode, costs: tuple[int, ...]) -> None:
        """The cost RateLimits charges for a refused document (its outline has no fields to count)."""
        context = self.execution_context
        wanted = getattr(context, "_provided_operation_name", None)
        cost = 0
        for definition, operation_cost_ in zip(outline.definitions, costs, strict=True):
            assert isinstance(definition, OperationDefinitionNode)
            if wanted is None or (definition.name is not None and definition.name.value == wanted):
                cost = operation_cost_
                break
        setattr(context, EXAMINED_COST, cost)

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if (
            context.pre_execution_errors is None
            and document is not None
            and _unnamed_choice(context, document)
        ):
            # Strawberry would pick the first operation; GraphQL over HTTP says it is an error.
            context.pre_execution_errors = [
                GraphQLError("Must provide operation name if query contains multiple operations.")
            ]
        if context.pre_execution_errors is None and document is not None:
            if self._cached_errors is not None:
                context.pre_execution_errors = list(self._cached_errors)
            else:
                schema = context.schema._schema
                rules = tuple(context.validation_rules)
                if self._large:
                    errors = await asyncio.to_thread(validate, schema, document, rules, self.limits)
                else:
                    errors = validate(schema, document, rules, self.limits)
                errors = capped(errors)
                context.pre_execution_errors = errors
                if caching and self._key is not None:
                    _remember(self._key, _Cached(document, list(errors)))
        yield


def _remember(key: tuple[str, _Rules], cached: _Cached) -> None:
    _cache[key] = cached
    if len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)


def _unnamed_choice(context: ExecutionContext, document: DocumentNode) -> bool:
    """No operationName, and more than one operation to choose from."""
    if getattr(context, "_provided_operation_name", None) is not None:
        return False
    operations = (
        definition for definition in document.definitions if isinstance(definition, OperationDefinitionNode)
    )
    return next(operations, None) is not None and next(operations, None) is not None
