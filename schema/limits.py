"""The request limits as validation rules, built once (ValidationCache keys on rule classes)."""

from __future__ import annotations

from typing import Any

from graphql import ASTValidationRule, GraphQLError, SelectionSetNode, ValidationContext, ValidationRule
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from schema.cost import cost_limit_rule


class NoEmptySelectionSets(ValidationRule):
    """`{ a {} }` parses, but the spec has no empty selection sets, and Strawberry's depth
    limiter fails on one (max() of nothing): refuse it as a client error."""

    def enter_selection_set(self, node: SelectionSetNode, *_args: Any) -> None:
        if not node.selections:
            self.report_error(GraphQLError("Selection sets may not be empty.", node))


def _tolerant(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """`rule`, except that a document it cannot measure (an empty selection set, an unknown
    fragment, a fragment cycle: all invalid anyway) is refused as a client error rather than
    crashing validation, and never slips past the limit."""

    class Tolerant(rule):  # type: ignore[valid-type,misc]  # a class made at runtime
        def __init__(self, context: ValidationContext) -> None:
            try:
                super().__init__(context)
            except (ValueError, KeyError, RecursionError):
                ValidationRule.__init__(self, context)
                context.report_error(GraphQLError("The document's depth cannot be measured."))

    Tolerant.__name__ = rule.__name__
    return Tolerant


def limit_rules(
    max_depth: int, max_aliases: int, max_cost: int, max_page_size: int
) -> list[type[ASTValidationRule]]:
    return [
        NoEmptySelectionSets,
        *(_tolerant(rule) for rule in QueryDepthLimiter(max_depth=max_depth).validation_rules),
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
        cost_limit_rule(max_cost, max_page_size),
    ]
