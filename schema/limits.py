"""The request limits: the figures, the document limits (measured by schema/document_guard.py
before any rule runs) and the validation rules we add to graphql-core's."""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    GraphQLError,
    OverlappingFieldsCanBeMergedRule,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import NoSchemaIntrospectionCustomRule

from schema.document_guard import DocumentLimits, token_count

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000
# Fields times page sizes: a full page of 100 media with ~40 fields fits.
MAX_COST = 5000
# Fields, inline fragments and spreads once every fragment is expanded. Every field costs at
# least one, so a document within MAX_COST has at most MAX_COST fields.
MAX_SELECTIONS = 2 * MAX_COST
# OverlappingFieldsCanBeMerged compares pairs: fields of one response name in one selection set
# (inline fragments included), fragment spreads in one selection set.
MAX_SAME_NAME = 10
MAX_SPREADS = 32
# And graphql-core meters the rule's work in units (about one per comparison), aborting the
# validation when a budget runs out. Ours is in proportion to the document's tokens: real
# operations spend far less (every root field of the schema selected 4 levels deep: at most 0.08
# units per token; the introspection query: none), a hostile document runs out quickly.
OVERLAP_UNITS_PER_TOKEN = 2
OVERLAP_UNITS_MIN = 500


# The attribute of Strawberry's execution context that carries the rate-limit cost of a document
# examined in a worker process and refused there (schema/documents.py): the event loop has only
# its outline, which RateLimits (schema/rate_limits.py) cannot measure.
EXAMINED_COST = "mediagraph_examined_cost"


def document_limits(max_page_size: int) -> DocumentLimits:
    return DocumentLimits(
        max_depth=MAX_DEPTH,
        max_aliases=MAX_ALIASES,
        max_cost=MAX_COST,
        max_page_size=max_page_size,
        max_selections=MAX_SELECTIONS,
        max_same_name=MAX_SAME_NAME,
        max_spreads=MAX_SPREADS,
    )


class NoEmptySelectionSets(ValidationRule):
    """`{ a {} }` parses, but the spec has no empty selection sets: refuse it as a client error."""

    def enter_selection_set(self, node: SelectionSetNode, *_args: Any) -> None:
        if not node.selections:
            self.report_error(GraphQLError("Selection sets may not be empty.", node))


class MeteredOverlappingFields(OverlappingFieldsCanBeMergedRule):
    """graphql-core's rule, with a budget in proportion to the document's tokens instead of a
    fixed 500,000 units (a 2,000-token document could spend them all: about half a second)."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        tokens = token_count(context.document)
        if tokens is not None:
            budget = max(OVERLAP_UNITS_MIN, OVERLAP_UNITS_PER_TOKEN * tokens)
            self.rule_context.remaining_complexity_budget = budget


def with_metered_overlap(rules: tuple[type[ASTValidationRule], ...]) -> tuple[type[ASTValidationRule], ...]:
    """`rules` with graphql-core's OverlappingFieldsCanBeMerged replaced by the metered one."""
    return tuple(
        MeteredOverlappingFields if rule is OverlappingFieldsCanBeMergedRule else rule for rule in rules
    )


# Built once: the validation cache keys on the rule classes.
RULES: tuple[type[ASTValidationRule], ...] = (NoEmptySelectionSets,)
# The production profile: the same rules, and no introspection.
PRODUCTION_RULES: tuple[type[ASTValidationRule], ...] = (*RULES, NoSchemaIntrospectionCustomRule)
