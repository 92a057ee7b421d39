"""Schema-driven fuzzing (hypothesis): documents built from the introspected schema with
arguments of every shape, each given as a literal or as a declared variable whose value is drawn
too (null for non-null, wrong types, NaN, huge numbers, missing and unknown input fields),
broken documents, odd variables. No answer is a 5xx, every error has
an extensions.code and none is INTERNAL_SERVER_ERROR, nothing shows Python internals.

Bounded for CI: a fixed number of examples, derandomized (the same run every time), requests
with a timeout; the run happens in a thread so the in-process server keeps serving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from infra.settings import Settings
from tests.conftest import isolated_settings
from tests.schema_walk import client_schema, root_fields, selection

pytestmark = pytest.mark.e2e

EXAMPLES = 150
CODES = {"UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "CONFLICT", "RATE_LIMITED"}
INTERNALS = (
    "Traceback",
    'File "',
    ".py",
    "site-packages",
    "Exception",
    "NoneType",
    "object has no attribute",
)


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_url, rate_limit_enabled=False)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "x" * 300,
        "\x00",
        "../../etc/passwd",
        "' OR 1=1 --",
        "#tag",
        "null",
        "\u202e",
        "😀",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ]
) | st.text(max_size=40)
NASTY_INT = st.sampled_from([0, -1, 1, 100, 101, 2**31, -(2**31) - 1, 2**53 + 1, 10**30]) | st.integers()


def literal(type_: GraphQLInputType, depth: int = 0) -> st.SearchStrategy[str]:
    """GraphQL literals of (mostly) the right shape for `type_`, with hostile values."""
    if isinstance(type_, GraphQLNonNull):
        return literal(type_.of_type, depth)
    if isinstance(type_, GraphQLList):
        return st.lists(literal(type_.of_type, depth + 1), max_size=3).map(
            lambda items: f"[{', '.join(items)}]"
        )
    if isinstance(type_, GraphQLEnumType):
        return st.sampled_from([*type_.values, "NOT_A_VALUE"])
    if isinstance(type_, GraphQLInputObjectType):
        if depth > 2:
            return st.just("{}")
        fields = list(type_.fields.items())
        return st.lists(
            st.one_of([_named(field_name, literal(field.type, depth + 1)) for field_name, field in fields]),
            max_size=len(fields) + 1,
            unique_by=lambda text: text.split(":")[0],
        ).map(lambda parts: "{ " + ", ".join(parts) + " }")
    name = getattr(type_, "name", "")
    wrong = st.sampled_from(["null", "true", "1.5", '"str"', "[]", "{}", "-1"])
    if name in ("Int", "Long"):
        right = NASTY_INT.map(str)
    elif name == "Float":
        right = st.floats(allow_nan=False, allow_infinity=False).map(repr)
    elif name == "Boolean":
        right = st.sampled_from(["true", "false"])
    else:
        right = NASTY_TEXT.map(json.dumps)
    return st.one_of(right, right, wrong)


def _named(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return values.map(lambda value: f"{name}: {value}")


MISSING = object()  # a variable left out of the request's variables


def variable_value(type_: GraphQLInputType, depth: int = 0) -> st.SearchStrategy[Any]:
    """JSON values for a variable of `type_`: mostly the right shape with hostile values, and
    the wrong shapes a client sends by mistake (null for non-null, a number for a string, NaN,
    an out-of-range or 300-digit integer, a missing or unknown input field)."""
    if isinstance(type_, GraphQLNonNull):
        return st.one_of(variable_value(type_.of_type, depth), st.just(None))
    if isinstance(type_, GraphQLList):
        return st.one_of(
            st.lists(variable_value(type_.of_type, depth + 1), max_size=3),
            variable_value(type_.of_type, depth + 1),
        )
    if isinstance(type_, GraphQLEnumType):
        return st.sampled_from([*type_.values, "NOT_A_VALUE", 1])
    if isinstance(type_, GraphQLInputObjectType):
        if depth > 2:
            return st.just({})
        fields = {name: variable_value(field.type, depth + 1) for name, field in type_.fields.items()}
        return st.fixed_dictionaries({}, optional={**fields, "notAField": JSON})
    name = getattr(type_, "name", "")
    wrong = st.sampled_from([[], {}, True, "str", 1.5, float("nan"), float("inf"), 10**300, -(2**63)])
    if name in ("Int", "Long"):
        right: st.SearchStrategy[Any] = NASTY_INT
    elif name == "Float":
        right = st.floats(allow_nan=True, allow_infinity=True)
    elif name == "Boolean":
        right = st.booleans()
    else:
        right = NASTY_TEXT
    return st.one_of(right, right, wrong)


Operation = tuple[str, dict[str, Any] | None]


def document(
    schema: GraphQLSchema, fields: list[tuple[str, str, GraphQLField]]
) -> st.SearchStrategy[Operation]:
    """(document, variables): each argument a literal or a declared variable, at random."""

    def argument(arg_name: str, arg: Any) -> st.SearchStrategy[tuple[str, tuple[str, str, Any] | None]]:
        as_literal = literal(arg.type).map(lambda value: (f"{arg_name}: {value}", None))
        as_variable = st.one_of(variable_value(arg.type), st.just(MISSING)).map(
            lambda value: (f"{arg_name}: ${arg_name}", (arg_name, str(arg.type), value))
        )
        return st.one_of(as_literal, as_variable)

    def build(choice: tuple[str, str, GraphQLField]) -> st.SearchStrategy[Operation]:
        kind, name, field = choice
        args = list(field.args.items())
        chosen = st.lists(st.sampled_from(args), unique_by=lambda item: item[0]) if args else st.just([])

        def render(picked: list[Any]) -> st.SearchStrategy[Operation]:
            rendered = [argument(arg_name, arg) for arg_name, arg in picked]

            def assemble(parts: tuple[Any, ...]) -> Operation:
                *arguments, depth = parts
                declared = [variable for _, variable in arguments if variable is not None]
                header = "(" + ", ".join(f"${n}: {t}" for n, t, _ in declared) + ")" if declared else ""
                call = "(" + ", ".join(text for text, _ in arguments) + ")" if arguments else ""
                values = {n: v for n, _, v in declared if v is not MISSING}
                query = f"{kind}{header} {{ {name}{call} {selection(schema, field.type, depth)} }}"
                return query, values if declared else None

            return st.tuples(*rendered, st.integers(0, 3)).map(assemble)

        return chosen.flatmap(render)

    valid = st.sampled_from([f for f in fields if f[0] != "subscription"]).flatmap(build)
    broken = st.tuples(
        valid, st.integers(0, 200), st.sampled_from(["", "{", "}", "(", "$", "...", "\\", '"'])
    ).map(lambda parts: (parts[0][0][: parts[1]] + parts[2] + parts[0][0][parts[1] :], parts[0][1]))
    text = st.text(max_size=60).map(lambda query: (query, None))
    return st.one_of(valid, valid, broken, text)


def check(response: httpx.Response, sent: object) -> None:
    assert response.status_code < 500, (sent, response.status_code, response.text)
    for internal in INTERNALS:
        assert internal not in response.text, (sent, response.text)
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        errors = body.get("errors") or [] if isinstance(body, dict) else []
        for error in errors:
            code = error.get("extensions", {}).get("code")
            assert code in CODES, (sent, body)


async def test_fuzzed_operations_never_fail_the_server(api: str, token: Callable[..., str]) -> None:
    schema = await client_schema(api)
    fields = root_fields(schema)
    bob = token("bob")
    sent: list[str] = []

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,  # no timing assertions: the bound is the number of examples
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(operation=document(schema, fields), junk=st.none() | JSON, authenticated=st.booleans())
    def run(operation: Operation, junk: Any, authenticated: bool) -> None:
        query, variables = operation
        headers = {"Authorization": f"Bearer {bob}"} if authenticated else {}
        # Declared variables get drawn values; otherwise any JSON (an object or not) is sent.
        payload = {"query": query, "variables": variables if variables is not None else junk}
        sent.append(query)
        with httpx.Client(base_url=api, timeout=30) as client:
            check(client.post("/graphql", json=payload, headers=headers), payload)

    await asyncio.to_thread(run)
    assert len(sent) >= EXAMPLES  # the run happened in full
