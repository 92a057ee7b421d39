"""Rate limits for every root field of Query, Mutation and Subscription, by construction.

One extension charges the caller's buckets (services/access/rate_limits.py: one per user, one
per client address, anonymous callers included) once per operation, before its validation:
the cost of the operation is the sum of the costs of the root fields it selects (aliases each
count, fragments and inline fragments at the root are expanded, each fragment measured once),
whatever their type, reads included. No field opts in: a new root field is charged the day it
is added (tests/e2e/test_rate_limit_every_field.py walks the schema to keep it so).

`__typename` is free. A refused operation is answered RATE_LIMITED with extensions.retryAfter,
nothing validated or executed. What happens while Redis is down is the limiter's
(infra/redis/rate_limit.py: buckets in the process).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextvars import ContextVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)
from strawberry.extensions import SchemaExtension

from schema.limits import EXAMINED_COST, MAX_TOKENS
from services.core.errors import RateLimited

DEFAULT_COST = 1
# Root fields that cost more than one token (their schema names). Every other root field costs
# DEFAULT_COST; a name here that is not a root field fails a test.
COSTS: dict[str, int] = {
    "exportMyData": 10,  # builds and uploads an archive of everything the user has
    "deleteAccount": 10,  # moves every media of the user to the trash
}
FREE = frozenset({"__typename"})
# More than any bucket holds: an operation costing this much is refused whatever the budget.
MAX_CHARGE = 10_000


def operation_cost(document: DocumentNode, operation_name: str | None) -> int:
    """Tokens the operation `operation_name` (else the first one) of `document` costs."""
    operation: OperationDefinitionNode | None = None
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
        elif (
            isinstance(definition, OperationDefinitionNode)
            and operation is None
            and _chosen(definition, operation_name)
        ):
            operation = definition
    if operation is None:
        return 0
    measured: dict[str, int] = {}

    def cost_of(selection_set: SelectionSetNode, entered: frozenset[str]) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                total += 0 if name in FREE else COSTS.get(name, DEFAULT_COST)
            elif isinstance(selection, InlineFragmentNode):
                total += cost_of(selection.selection_set, entered)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in entered:  # unknown or a cycle: refused in validation
                    continue
                if name not in measured:  # each fragment once, however often it is spread
                    measured[name] = cost_of(fragment.selection_set, entered | {name})
                total += measured[name]
            total = min(total, MAX_CHARGE)
        return total

    try:
        return cost_of(operation.selection_set, frozenset())
    except RecursionError:
        return MAX_CHARGE


def _chosen(operation: OperationDefinitionNode, operation_name: str | None) -> bool:
    return operation_name is None or (operation.name is not None and operation.name.value == operation_name)


# Set while a WebSocket subscribe message is handed to Strawberry: the handler charged it
# already (subscriptions/ws_guard.py), before the shared fan-out could let it join a running
# subscription without executing it (and so without passing through the extension).
charged_already: ContextVar[bool] = ContextVar("charged_already", default=False)


async def charge(
    request: object, document: DocumentNode, operation_name: str | None, *, cost: int | None = None
) -> RateLimited | None:
    """Take the operation's tokens (`cost`, else measured on `document`) from the caller's
    buckets; the refusal, if any."""
    services = getattr(request, "services", None)
    limits = getattr(services, "rate_limits", None)
    if limits is None:
        return None
    if cost is None:
        cost = operation_cost(document, operation_name)
    if cost <= 0:
        return None
    try:
        await limits.check(
            getattr(request, "principal", None), getattr(request, "client_ip", None), cost=cost
        )
    except RateLimited as refused:
        return refused
    return None


async def charge_text(request: object, query: str, operation_name: str | None) -> RateLimited | None:
    """`charge` for a query not parsed yet (a WebSocket subscribe message). A query that does not
    parse costs nothing here: Strawberry refuses it."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None
    return await charge(request, document, operation_name)


class RateLimits(SchemaExtension):
    """Listed before the parsing and validation extension: its on_validate runs first, so a
    refused operation costs no validation in this process. (With document workers, the
    document was examined in a worker before: schema/documents.py.)"""

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None and not charged_already.get():
            operation_name = getattr(context, "_provided_operation_name", None)
            # A document refused in a worker process comes as an outline, with its cost measured
            # there (schema/documents.py).
            cost = getattr(context, EXAMINED_COST, None)
            refused = await charge(context.context, document, operation_name, cost=cost)
            if refused is not None:
                context.pre_execution_errors = [GraphQLError(refused.message, original_error=refused)]
        yield
