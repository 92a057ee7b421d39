"""The committed schema.graphql is what the code serves: clients generate types from it."""

from __future__ import annotations

from pathlib import Path

from schema.root import build_schema

SNAPSHOT = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    assert SNAPSHOT.read_text() == build_schema().as_str() + "\n", (
        "schema/schema.graphql is stale: run `make schema` and commit it"
    )


def test_an_unexpected_value_error_is_masked_not_reported_as_input() -> None:
    from graphql.error import GraphQLError

    from schema.extensions import shape_error

    bug = GraphQLError("secret internals", original_error=ValueError("secret internals"))
    shaped = shape_error(bug, "req-1")
    assert shaped.message == "Internal server error"
    assert shaped.extensions == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-1"}

    coercion = GraphQLError(
        "Variable '$input' got invalid value 'x'; Long out of range",
        original_error=ValueError("Long out of range"),
    )
    assert shape_error(coercion, "req-2").extensions == {"code": "BAD_USER_INPUT"}
