"""Validation is linear in the document: counted, not timed. For every document of the hostile
corpus (tests/hostile.py), the nodes the document limits visit, the nodes graphql-core's
validation visits, and the units OverlappingFieldsCanBeMerged spends are at most K per token."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest
from graphql import (
    GraphQLError,
    GraphQLSyntaxError,
    ValidationRule,
    get_introspection_query,
    parse,
    specified_rules,
)
from strawberry.schema.schema import validate_document

from schema.document_guard import check_document, token_count
from schema.limits import (
    MAX_DEPTH,
    MAX_TOKENS,
    RULES,
    MeteredOverlappingFields,
    document_limits,
    with_metered_overlap,
)
from schema.root import build_schema
from services.core.pagination import MAX_PAGE_SIZE
from tests.hostile import DOCUMENTS, Hostile, fan_out

# Work per token: the limits visit each node once (< 1 per token), the validation visitor enters
# each node once (a few per token), the overlap rule may spend OVERLAP_UNITS_PER_TOKEN (2).
K = 10
LIMITS = document_limits(MAX_PAGE_SIZE)


def validation_work(query: str) -> tuple[int, int, list[GraphQLError]] | None:
    """(work, tokens, errors) of validating `query`, or None if it does not parse."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError:
        return None
    tokens = token_count(document)
    assert tokens is not None
    verdict = check_document(document, LIMITS)
    if verdict.errors:
        return verdict.visited, tokens, verdict.errors
    entered = 0
    meters: list[Any] = []

    class CountNodes(ValidationRule):
        def enter(self, *_args: Any) -> None:
            nonlocal entered
            entered += 1

    class Metered(MeteredOverlappingFields):
        def __init__(self, context: Any) -> None:
            super().__init__(context)
            meters.append((self.rule_context, self.rule_context.remaining_complexity_budget))

    rules = tuple(
        Metered if rule is MeteredOverlappingFields else rule
        for rule in with_metered_overlap(specified_rules)
    )
    errors = validate_document(build_schema()._schema, document, (*rules, *RULES, CountNodes))
    spent = sum(budget - max(0, context.remaining_complexity_budget) for context, budget in meters)
    return verdict.visited + entered + spent, tokens, errors


@pytest.mark.parametrize("hostile", DOCUMENTS, ids=lambda hostile: hostile.name)
def test_validation_work_is_linear_in_the_tokens(hostile: Hostile) -> None:
    measured = validation_work(hostile.query)
    if measured is None:
        return  # refused by the parser: bounded by the token cap and its nesting limit
    work, tokens, _ = measured
    assert work <= K * tokens, (hostile.name, work, tokens)


@pytest.mark.parametrize("levels", [10, 25, 60, 190])
def test_fragment_fan_out_is_measured_once_per_fragment(levels: int) -> None:
    document = parse(fan_out(levels))
    verdict = check_document(document, LIMITS)
    # Each fragment's selections are visited once, however often it is spread.
    assert verdict.visited <= 4 * (levels + 2)
    if 2**levels > LIMITS.max_selections:
        assert verdict.errors and "expands to more than" in verdict.errors[0].message


def test_a_fan_out_within_the_limits_is_measured_exactly() -> None:
    # 2^8 = 256 __typename fields: within every limit, and the cost counts each once.
    verdict = check_document(parse(fan_out(8)), LIMITS)
    assert verdict.errors == []
    too_costly = check_document(parse(fan_out(8)), dataclasses.replace(LIMITS, max_cost=255))
    assert "costs more than the maximum of 255" in too_costly.errors[0].message


def test_depth_and_aliases_count_through_fragments() -> None:
    nested = "fragment N on Media { owner { id } } " + "{ myMedia { edges { node { ...N } } } }"
    assert check_document(parse(nested), LIMITS).errors == []
    deep = (
        "{ myMedia { edges { node { ...D0 } } } } "
        + " ".join(
            f"fragment D{i} on Media {{ owner {{ media {{ edges {{ node {{ ...D{i + 1} }} }} }} }} }}"
            for i in range(3)
        )
        + " fragment D3 on Media { id }"
    )
    errors = check_document(parse(deep), LIMITS).errors
    assert errors and f"maximum operation depth of {MAX_DEPTH}" in errors[0].message
    aliases = (
        "{ ...A } fragment A on Query { ...B ...B } fragment B on Query { "
        + " ".join(f"a{i}: __typename" for i in range(8))
        + " }"
    )
    errors = check_document(parse(aliases), LIMITS).errors
    assert errors and "16 aliases found" in errors[0].message


@pytest.mark.parametrize(
    "query",
    [
        "{ ...A } fragment A on Query { ...A }",
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ... on Query { ...A } }",
        "{ __typename } fragment A on Query { ...B } fragment B on Query { ...A }",
    ],
)
def test_fragment_cycles_are_refused_before_any_rule(query: str) -> None:
    errors = check_document(parse(query), LIMITS).errors
    assert errors and "within itself" in errors[0].message


async def test_variable_errors_name_the_variable() -> None:
    context = SimpleNamespace(request_id="t", production=False)
    for hostile in DOCUMENTS:
        if hostile.variable is None or hostile.raw_variables is not None:
            continue
        result = await build_schema().execute(hostile.query, hostile.variables, context_value=context)
        assert result.errors, hostile.name
        for error in result.errors:
            assert error.extensions == {"code": "BAD_USER_INPUT", "variable": hostile.variable}, (
                hostile.name,
                error,
            )


def test_the_introspection_query_is_within_the_limits() -> None:
    # Its fragments are deep (TypeRef), but under __schema, which depth does not count.
    assert check_document(parse(get_introspection_query()), LIMITS).errors == []
