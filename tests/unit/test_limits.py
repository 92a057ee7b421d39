"""The validation limits on documents that would trip a naive limiter: empty selection sets,
unknown fragments, fragment cycles, and costs through fragments and variables."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from schema.limits import MAX_COST
from schema.root import build_schema

PAGE = "edges { node { mediaId title tags status size sha256 contentType createdAt visibility } }"


async def errors_of(query: str) -> list[tuple[str, str]]:
    result = await build_schema().execute(query, context_value=SimpleNamespace(request_id="t"))
    return [(error.message, (error.extensions or {}).get("code", "")) for error in result.errors or []]


@pytest.mark.parametrize(
    "query",
    [
        "{ myMedia {} }",
        "query { A { ...A } }",
        "fragment A on Query { ...A } { ...A }",
        "{ myMedia { edges { node { ...F } } } } fragment F on Media { ...F }",
    ],
)
async def test_unmeasurable_documents_are_client_errors(query: str) -> None:
    errors = await errors_of(query)
    assert errors and {code for _, code in errors} == {"BAD_USER_INPUT"}, errors


async def test_cost_counts_through_fragments() -> None:
    spread = " ".join(f"p{i}: myMedia(first: 100) {{ ...Page }}" for i in range(6))
    errors = await errors_of(f"{{ {spread} }} fragment Page on MediaConnection {{ {PAGE} }}")
    assert any(f"maximum of {MAX_COST}" in message for message, _ in errors), errors


async def test_cost_of_a_variable_page_size_is_the_largest_page() -> None:
    one = "query($n: Int) { myMedia(first: $n) { " + PAGE + " } }"
    assert not any("costs more" in message for message, _ in await errors_of(one))
    six = "query($n: Int) { " + " ".join(f"p{i}: myMedia(first: $n) {{ {PAGE} }}" for i in range(6)) + " }"
    assert any("costs more" in message for message, _ in await errors_of(six))
