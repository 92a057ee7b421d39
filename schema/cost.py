"""A query cost limit: every field costs one, times the page sizes (`first`/`last`) above it.

`{ myMedia(first: 100) { edges { node { title } } } }` costs 1 + 100 * (1 + 1 + 1) = 301. A page
size given as a variable counts as the largest page a client may ask for, since validation runs
before (and is cached independently of) the variables. Fragments are expanded where they are
spread; a fragment cycle is left to graphql-core's own rule.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

PAGE_ARGUMENTS = ("first", "last")


def cost_limit_rule(max_cost: int, max_page_size: int) -> type[ValidationRule]:
    """A validation rule class refusing operations that cost more than `max_cost`. Build it
    once: ValidationCache keys on the rule classes."""

    class QueryCostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            cost = _cost(self.context, node.selection_set, 1, frozenset(), max_cost, max_page_size)
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"'{node.name.value if node.name else 'anonymous'}' costs more than the "
                        f"maximum of {max_cost} (fields times page sizes).",
                        node,
                    )
                )

    return QueryCostLimit


def _multiplier(field: FieldNode, max_page_size: int) -> int:
    for argument in field.arguments or ():
        if argument.name.value not in PAGE_ARGUMENTS:
            continue
        if isinstance(argument.value, IntValueNode):
            try:
                return max(1, min(int(argument.value.value), max_page_size))
            except ValueError:
                return max_page_size
        return max_page_size  # a variable (or anything else): assume the worst
    return 1


def _cost(
    context: ValidationContext,
    selection_set: SelectionSetNode | None,
    multiplier: int,
    seen: frozenset[str],
    ceiling: int,
    max_page_size: int,
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += multiplier + _cost(
                context,
                selection.selection_set,
                multiplier * _multiplier(selection, max_page_size),
                seen,
                ceiling,
                max_page_size,
            )
        elif isinstance(selection, InlineFragmentNode):
            total += _cost(context, selection.selection_set, multiplier, seen, ceiling, max_page_size)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            if fragment is None or name in seen:
                continue
            total += _cost(context, fragment.selection_set, multiplier, seen | {name}, ceiling, max_page_size)
        if total > ceiling:
            return total  # over already: stop walking a possibly huge document
    return total
