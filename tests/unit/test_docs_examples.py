"""Every GraphQL example in README.md and docs/ is one operation that the schema accepts, so it
runs when pasted whole into GraphiQL or a client (several operations in one block need an
operation name, and anonymous ones fail together)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse, validate

from schema.root import build_schema

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```graphql\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


@pytest.mark.parametrize(("where", "block"), _blocks(), ids=[where for where, _ in _blocks()])
def test_each_graphql_example_is_one_valid_operation(where: str, block: str) -> None:
    document = parse(block)
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    assert len(operations) == 1, f"{where}: {len(operations)} operations in one block"
    assert validate(build_schema()._schema, document) == [], where
