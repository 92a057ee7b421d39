"""Parsing and validation of every operation, in one extension: the token cap, the parse and
validation caches, the document limits (schema/document_guard.py) before any validation rule,
the profile's rules, and large documents parsed and validated off the event loop.

Order of the work for a document the caches do not know:
1. parse, with at most `max_tokens` tokens (graphql-core stops at the first token over);
2. the document limits, one linear pass (fragments measured once each): a document over a
   limit is refused here, and no validation rule runs on it;
3. graphql-core's rules and ours (schema/limits.py), each linear once step 2 has bounded the
   pairwise comparisons of OverlappingFieldsCanBeMerged.
A document of more than `OFF_LOOP_CHARS` characters is parsed, and validated, in a worker
thread: what one request may hold the event loop for is the validation of a document below
that size. The thread holds the GIL while it works, but Python hands it over every switch
interval (5 ms), so /healthz and other requests keep being answered (docs/security.md).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from schema.document_guard import DocumentLimits, check_document
from schema.limits import with_metered_overlap

# Off the loop above this size: ~ 150 tokens, a little more than most real operations.
OFF_LOOP_CHARS = 1024
CACHE_SIZE = 256
# The bench (bench/hostile.py) measures uncached work: it turns this off in its own server.
caching = True

_Rules = tuple[type[ASTValidationRule], ...]
# Handed to Strawberry with the syntax error of a large document (see on_parse): a query, which
# every transport allows; its one field is no field of the schema, so metrics label it unknown.
_STAND_IN = parse("{ _ }")
# (query text, rules) -> the parsed document and its validation errors; least recently used out.
_cache: OrderedDict[tuple[str, _Rules], tuple[DocumentNode, list[GraphQLError]]] = OrderedDict()


def validate(
    schema: GraphQLSchema, document: DocumentNode, rules: _Rules, limits: DocumentLimits
) -> list[GraphQLError]:
    """The document limits first; graphql-core's rules and `rules` only on a document within them."""
    verdict = check_document(document, limits)
    if verdict.errors:
        return verdict.errors
    return validate_document(schema, document, rules)


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
            if hit is not None:
                _cache.move_to_end(self._key)
                context.graphql_document, self._cached_errors = hit
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
                context.pre_execution_errors = errors
                if caching and self._key is not None:
                    _cache[self._key] = (document, list(errors))
                    if len(_cache) > CACHE_SIZE:
                        _cache.popitem(last=False)
        yield


def _unnamed_choice(context: ExecutionContext, document: DocumentNode) -> bool:
    """No operationName, and more than one operation to choose from."""
    if getattr(context, "_provided_operation_name", None) is not None:
        return False
    operations = (
        definition for definition in document.definitions if isinstance(definition, OperationDefinitionNode)
    )
    return next(operations, None) is not None and next(operations, None) is not None
