"""Schema-driven fuzzing (hypothesis): documents built from the introspected schema with
arguments of every shape, broken documents, odd variables. No answer is a 5xx, every error has
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


def document(schema: GraphQLSchema, fields: list[tuple[str, str, GraphQLField]]) -> st.SearchStrategy[str]:
    def build(choice: tuple[str, str, GraphQLField]) -> st.SearchStrategy[str]:
        kind, name, field = choice
        args = list(field.args.items())
        chosen = st.lists(st.sampled_from(args), unique_by=lambda item: item[0]) if args else st.just([])

        def render(picked: list[Any]) -> st.SearchStrategy[str]:
            rendered = [_named(arg_name, literal(arg.type)) for arg_name, arg in picked]
            return st.tuples(*rendered, st.integers(0, 3)).map(
                lambda parts: (
                    f"{kind} {{ {name}{'(' + ', '.join(parts[:-1]) + ')' if parts[:-1] else ''} "
                    f"{selection(schema, field.type, parts[-1])} }}"
                )
            )

        return chosen.flatmap(render)

    valid = st.sampled_from([f for f in fields if f[0] != "subscription"]).flatmap(build)
    broken = st.tuples(
        valid, st.integers(0, 200), st.sampled_from(["", "{", "}", "(", "$", "...", "\\", '"'])
    ).map(lambda parts: parts[0][: parts[1]] + parts[2] + parts[0][parts[1] :])
    return st.one_of(valid, valid, broken, st.text(max_size=60))


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
    @given(query=document(schema, fields), variables=st.none() | JSON, authenticated=st.booleans())
    def run(query: str, variables: Any, authenticated: bool) -> None:
        headers = {"Authorization": f"Bearer {bob}"} if authenticated else {}
        payload = {"query": query, "variables": variables}
        sent.append(query)
        with httpx.Client(base_url=api, timeout=30) as client:
            check(client.post("/graphql", json=payload, headers=headers), payload)

    await asyncio.to_thread(run)
    assert len(sent) >= EXAMPLES  # the run happened in full
