"""The document limits, measured in one pass linear in the document's size, before any
validation rule runs.

A fragment may be spread many times, and spread fragments may spread others: `{ ...F0 }
fragment F0 on Query { ...F1 ...F1 } fragment F1 on Query { ...F2 ...F2 } ...` is 1 KB that
expands to 2^n selections. A limiter that walks every spread path does 2^n work before it can
say no. Here each fragment is measured once (memoised by name) and a spread adds its
fragment's figures, so the work is one visit per node of the document whatever the expansion.

Measured per operation, fragments expanded (each fragment definition is walked too, once, so a
fragment no operation uses cannot hide a cycle or a fan-out):

- selections: fields, inline fragments and spreads after expansion (`max_selections`);
- depth: nested fields with selection sets, introspection fields not counted (`max_depth`);
- aliases (`max_aliases`);
- cost: every field costs one, times the page sizes (`first`/`last`) above it; a page size
  given as a variable counts as the largest page (`max_cost`, `max_page_size`).

The one graphql-core rule whose work is not linear, OverlappingFieldsCanBeMerged, compares
pairs: fields of one response name in a selection set, fragment spreads of a selection set.
So at most `max_same_name` fields answer under one response name in one selection set (inline
fragments included) and a selection set holds at most `max_spreads` spreads; and graphql-core
meters the rule's work, against a budget schema/limits.py sets in proportion to the
document's tokens (`token_count`).

A fragment cycle, an unknown fragment or a duplicated fragment name is refused here too: a
measure needs each name to mean one fragment and the expansion to end.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    Token,
)

PAGE_ARGUMENTS = ("first", "last")


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_depth: int
    max_aliases: int
    max_cost: int
    max_page_size: int
    max_selections: int
    max_same_name: int
    max_spreads: int


@dataclass(frozen=True, slots=True)
class _Measure:
    selections: int
    depth: int
    aliases: int
    cost: int  # at a page multiplier of one: cost(s, m) = m * cost(s, 1)


class _Refused(Exception):
    def __init__(self, message: str, node: Node | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


@dataclass(slots=True)
class Verdict:
    """The errors (empty: within the limits) and the nodes the measure visited."""

    errors: list[GraphQLError]
    visited: int


def check_document(document: DocumentNode, limits: DocumentLimits) -> Verdict:
    """The limit errors of `document` (at most one: the first limit passed stops the measure)."""
    walker = _Walker(limits)
    refused: _Refused | None = None
    try:
        walker.run(document)
    except _Refused as exc:
        refused = exc
    except RecursionError:
        refused = _Refused("The document is nested too deeply.")
    if refused is None:
        return Verdict([], walker.visited)
    # Made outside the handler: the error must not carry the measure's traceback.
    return Verdict([GraphQLError(refused.message, refused.node)], walker.visited)


def token_count(document: DocumentNode) -> int | None:
    """The tokens the parser read for `document` (None for a document built in code)."""
    if document.loc is None:
        return None
    count = 0
    token: Token | None = document.loc.start_token
    while token is not None:
        count += 1
        token = token.next
    return count


def _multiplier(field: FieldNode, max_page_size: int) -> int:
    for argument in field.arguments or ():
        if argument.name.value not in PAGE_ARGUMENTS:
            continue
        value = argument.value
        if isinstance(value, IntValueNode) and len(value.value) <= 6:
            return max(1, min(int(value.value), max_page_size))
        return max_page_size  # a variable, a huge literal, anything else: assume the worst
    return 1


class _Walker:
    def __init__(self, limits: DocumentLimits) -> None:
        self.limits = limits
        self.visited = 0
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.operations: list[OperationDefinitionNode] = []
        self.measured: dict[str, _Measure] = {}
        self.in_progress: set[str] = set()

    def run(self, document: DocumentNode) -> None:
        for definition in document.definitions:
            self.visited += 1
            if isinstance(definition, FragmentDefinitionNode):
                name = definition.name.value
                if name in self.fragments:
                    raise _Refused(f"There can be only one fragment named '{name}'.", definition)
                self.fragments[name] = definition
            elif isinstance(definition, OperationDefinitionNode):
                self.operations.append(definition)
        for name, fragment in self.fragments.items():
            self._fragment(name, fragment)
        for operation in self.operations:
            measure = self._selection_set(operation.selection_set)
            self._check(measure, operation, operation.name.value if operation.name else "anonymous")

    def _check(self, measure: _Measure, node: Node, name: str) -> None:
        limits = self.limits
        if measure.depth > limits.max_depth:
            raise _Refused(f"'{name}' exceeds maximum operation depth of {limits.max_depth}", node)
        if measure.aliases > limits.max_aliases:
            raise _Refused(f"{measure.aliases} aliases found. Allowed: {limits.max_aliases}", node)
        if measure.cost > limits.max_cost:
            raise _Refused(
                f"'{name}' costs more than the maximum of {limits.max_cost} (fields times page sizes).", node
            )

    def _fragment(self, name: str, fragment: FragmentDefinitionNode) -> _Measure:
        known = self.measured.get(name)
        if known is not None:
            return known
        if name in self.in_progress:
            raise _Refused(f"Cannot spread fragment '{name}' within itself.", fragment)
        self.in_progress.add(name)
        measure = self._selection_set(fragment.selection_set)
        self.in_progress.discard(name)
        # Depth, aliases and cost count where the fragment is spread: an operation may use a
        # deep fragment under an introspection field, which does not count towards depth.
        self.measured[name] = measure
        return measure

    def _selection_set(self, selection_set: SelectionSetNode) -> _Measure:
        limits = self.limits
        selections = depth = aliases = cost = spreads = 0
        names: dict[str, int] = {}
        pending = list(selection_set.selections)  # inline fragments' selections join their parent's
        while pending:
            selection = pending.pop()
            self.visited += 1
            selections += 1
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                names[key] = same = names.get(key, 0) + 1
                if same > limits.max_same_name:
                    raise _Refused(
                        f"At most {limits.max_same_name} fields may answer as '{key}' in one selection set.",
                        selection,
                    )
                if selection.alias:
                    aliases += 1
                if selection.selection_set is None:
                    cost += 1
                    continue
                sub = self._selection_set(selection.selection_set)
                selections += sub.selections
                aliases += sub.aliases
                cost += 1 + _multiplier(selection, limits.max_page_size) * sub.cost
                if not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + sub.depth)
            elif isinstance(selection, InlineFragmentNode):
                pending.extend(selection.selection_set.selections)
            elif isinstance(selection, FragmentSpreadNode):
                spreads += 1
                if spreads > limits.max_spreads:
                    raise _Refused(
                        f"At most {limits.max_spreads} fragment spreads in one selection set.", selection
                    )
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None:
                    raise _Refused(f"Unknown fragment '{name}'.", selection)
                measure = self._fragment(name, fragment)
                selections += measure.selections
                aliases += measure.aliases
                cost += measure.cost
                depth = max(depth, measure.depth)
            if selections > limits.max_selections:
                raise _Refused(
                    f"The document expands to more than {limits.max_selections} selections.", selection
                )
        return _Measure(selections, depth, aliases, cost)
