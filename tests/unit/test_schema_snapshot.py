"""The committed schema.graphql is what the code serves: clients generate types from it."""

from __future__ import annotations

from pathlib import Path

from schema.root import build_schema

SNAPSHOT = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    assert SNAPSHOT.read_text() == build_schema().as_str() + "\n", (
        "schema/schema.graphql is stale: run `make schema` and commit it"
    )
