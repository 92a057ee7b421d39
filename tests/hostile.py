"""A corpus of hostile requests, each with the answer it must get (docs/security.md lists them).

DOCUMENTS: GraphQL documents (and variables) sent as ordinary POST /graphql requests; each is
answered 200 with errors of one code, nothing executed.
BODIES: raw HTTP bodies that are not a GraphQL request: 400 with a GraphQL error body.
WS_MESSAGES: raw WebSocket text frames: the socket is closed 4400 with a reason, whether they
come before or after connection_init.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HUGE_DIGITS = "9" * 5000
MEDIA_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


@dataclass(frozen=True)
class Hostile:
    name: str
    query: str
    variables: dict[str, Any] | None = None
    code: str = "BAD_USER_INPUT"
    # The variable a coercion error must name.
    variable: str | None = None
    # Variables as raw JSON text, for what Python's json cannot write (a 5,000-digit number).
    raw_variables: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def fan_out(levels: int, width: int = 2) -> str:
    """Each fragment spreads the next `width` times: 2^levels selections from a few hundred bytes."""
    fragments = " ".join(
        "fragment F{} on Query {{ {} }}".format(i, " ".join([f"...F{i + 1}"] * width)) for i in range(levels)
    )
    return f"{{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"


def _media(id_var: str = "$id") -> str:
    return f"media(id: {id_var}) {{ title }}"


DOCUMENTS: list[Hostile] = [
    # Fragment fan-out: the audit's 1 KB freeze (n = 25), and wider ones.
    Hostile("fan-out 25", fan_out(25)),
    Hostile("fan-out 60", fan_out(60)),
    Hostile("fan-out 8 wide", fan_out(8, width=8)),
    Hostile("fan-out 190 (too many fragments)", fan_out(190)),
    Hostile(
        "fan-out through fields",
        "{ ...F0 } "
        + " ".join(
            f"fragment F{i} on Query {{ a: feed {{ totalCount }} ...F{i + 1} ...F{i + 1} }}"
            for i in range(30)
        )
        + " fragment F30 on Query { __typename }",
    ),
    # Circular fragments.
    Hostile("self-spread", "{ ...A } fragment A on Query { ...A }"),
    Hostile("mutual spread", "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
    Hostile(
        "cycle through an inline fragment and a field",
        "{ feed { edges { node { ...M } } } } fragment M on Media { ... on Media { owner { id } ...M } }",
    ),
    Hostile("unused cycle", "{ __typename } fragment A on Query { ...B } fragment B on Query { ...A }"),
    Hostile("unknown fragment", "{ ...Nowhere }"),
    Hostile(
        "duplicate fragment",
        "{ ...A } fragment A on Query { __typename } fragment A on Query { feed { totalCount } }",
    ),
    # Floods.
    Hostile(
        "alias flood",
        "{ "
        + " ".join(f"a{i}: {_media(repr(MEDIA_ID).replace(chr(39), chr(34)))}" for i in range(300))
        + " }",
    ),
    Hostile("same-name flood", "{ " + "__typename " * 1500 + "}"),
    Hostile("nested same-name flood", "{ " + "feed { edges { node { title } } } " * 150 + "}"),
    Hostile("directive flood", "{ __typename " + "@skip(if: false) " * 300 + "}"),
    Hostile("directive flood under the token cap", "{ __typename " + "@include(if: true) " * 250 + "}"),
    Hostile("unknown directives", "{ " + " ".join(f"a{i}: __typename @nope{i}" for i in range(12)) + " }"),
    Hostile(
        "spread flood",
        "{ "
        + " ".join(f"...F{i}" for i in range(60))
        + " } "
        + " ".join(f"fragment F{i} on Query {{ __typename }}" for i in range(60)),
    ),
    Hostile(
        "spreads of spreads",
        "{ "
        + " ".join(f"...A{i}" for i in range(24))
        + " } "
        + " ".join(
            f"fragment A{i} on Query {{ " + " ".join(f"...B{j}" for j in range(24)) + " }" for i in range(24)
        )
        + " "
        + " ".join(f"fragment B{j} on Query {{ __typename }}" for j in range(24)),
    ),
    Hostile(
        "same names at every level",
        "{ " + ("feed { edges { node { " + "title " * 10 + "} } } ") * 10 + "}",
    ),
    Hostile(
        "same names through fragments",
        "{ "
        + " ".join(f"...F{i}" for i in range(16))
        + " } "
        + " ".join(
            f"fragment F{i} on Query {{ " + "feed { edges { node { title } } } " * 8 + "}" for i in range(16)
        ),
    ),
    Hostile(
        "conflicting fields",
        "{ " + " ".join(f'a: media(id: "{i}") {{ title }}' for i in range(10)) + " }",
    ),
    # Deep nesting.
    Hostile("too deep", "{ myMedia { " + "edges { node { owner { " * 11 + "id" + " } } }" * 11 + " } }"),
    Hostile("deep braces", "{ " + "feed { " * 600 + "totalCount" + " }" * 600 + " }"),
    Hostile("deep list literal", "{ mediaByTag(tag: " + "[" * 900 + '"x"' + "]" * 900 + ") { totalCount } }"),
    Hostile(
        "deep object literal", "{ myMedia(filter: " + "{ a: " * 600 + "1" + " }" * 600 + ") { totalCount } }"
    ),
    Hostile("token cap", "{ " + "__typename " * 2500 + "}"),
    # Huge numbers in the document.
    Hostile("huge int literal", "{ myMedia(first: " + HUGE_DIGITS[:1900] + ") { totalCount } }"),
    Hostile("huge float literal", "{ myMedia(first: 1e999999) { totalCount } }"),
    # Variable type errors: each names the variable.
    Hostile("missing variable", "query($id: ID!) { " + _media() + " }", {}, variable="id"),
    Hostile("null for non-null", "query($id: ID!) { " + _media() + " }", {"id": None}, variable="id"),
    Hostile("wrong type", "query($id: ID!) { " + _media() + " }", {"id": [1]}, variable="id"),
    Hostile("object for scalar", "query($id: ID!) { " + _media() + " }", {"id": {"a": 1}}, variable="id"),
    Hostile(
        "out of range", "query($n: Int) { myMedia(first: $n) { totalCount } }", {"n": 2**40}, variable="n"
    ),
    Hostile(
        "huge int variable",
        "query($n: Int) { myMedia(first: $n) { totalCount } }",
        {"n": 10**300},
        variable="n",
    ),
    Hostile(
        "5,000-digit variable",
        "query($n: Int) { myMedia(first: $n) { totalCount } }",
        raw_variables='{"n": ' + HUGE_DIGITS + "}",
        variable="n",
    ),
    Hostile(
        "NaN variable",
        "query($n: Int) { myMedia(first: $n) { totalCount } }",
        raw_variables='{"n": NaN}',
        variable="n",
    ),
    Hostile(
        "string for int", "query($n: Int) { myMedia(first: $n) { totalCount } }", {"n": "ten"}, variable="n"
    ),
    Hostile(
        "input missing a field",
        "mutation($input: CreateUploadInput!) { createUpload(input: $input) { media { id } } }",
        {"input": {"filename": "a.jpg", "contentType": "image/jpeg", "size": 10}},
        variable="input",
    ),
    Hostile(
        "input with an unknown field",
        "mutation($input: CreateUploadInput!) { createUpload(input: $input) { media { id } } }",
        {"input": {"filename": "a.jpg", "contentType": "image/jpeg", "size": 10, "sha256": "0" * 64, "x": 1}},
        variable="input",
    ),
    Hostile("undeclared type", "query($x: Nope) { __typename }", {"x": 1}),
    # Operations.
    Hostile("two operations, no name", "query A { __typename } query B { __typename }"),
    Hostile("unknown operation name", "query A { __typename }", extra={"operationName": "B"}),
    Hostile("node of a non-Node type", '{ node(id: "VXNlcjp4") { id } }'),  # User:x
    Hostile("node of an unknown type", '{ node(id: "Tm9wZTp4") { id } }'),  # Nope:x
    Hostile("syntax error", "{ media(id: "),
    Hostile("empty selection set", "{ myMedia {} }"),
]

# Raw HTTP bodies (Content-Type: application/json): each a 400 with a GraphQL error body.
BODIES: list[tuple[str, bytes]] = [
    ("null", b"null"),
    ("a string", b'"{ __typename }"'),
    ("a number", b"42"),
    ("true", b"true"),
    ("an array", b"[]"),
    ("an array of numbers", b"[1, 2]"),
    ("invalid UTF-8", b'{"query": "{ __typename \xff\xfe }"}'),
    ("UTF-16 garbage", "\ufeff{}".encode("utf-16")),
    ("not JSON", b"{ __typename }"),
    ("empty", b""),
    ("100k-deep arrays", b"[" * 100_000 + b"]" * 100_000),
    ("40k-deep objects", b'{"a":' * 40_000 + b"1" + b"}" * 40_000),
    ("huge integer", b'{"query": "{ __typename }", "operationName": ' + HUGE_DIGITS.encode() + b"}"),
    ("query not a string", b'{"query": 5}'),
    ("variables not an object", b'{"query": "{ __typename }", "variables": [1]}'),
    ("operationName not a string", b'{"query": "{ __typename }", "operationName": {"a": 1}}'),
    ("extensions not an object", b'{"query": "{ __typename }", "extensions": "x"}'),
    ("no query", b"{}"),
]

# Raw WebSocket text frames: each closes the socket with 4400.
WS_MESSAGES: list[tuple[str, str]] = [
    ("null", "null"),
    ("a string", '"connection_init"'),
    ("a number", "42"),
    ("an array", '[{"type": "connection_init"}]'),
    ("not JSON", "{ type: connection_init }"),
    ("no type", "{}"),
    ("type not a string", '{"type": 5}'),
    ("unknown type", '{"type": "start"}'),
    # 30k deep: within the 64 KiB message limit (over it, the protocol closes 1009 first).
    ("30k-deep arrays", "[" * 30_000 + "]" * 30_000),
    (
        "huge integer",
        '{"type": "subscribe", "id": ' + HUGE_DIGITS + ', "payload": {"query": "{ __typename }"}}',
    ),
    ("subscribe without payload", '{"type": "subscribe", "id": "1"}'),
    ("subscribe payload not an object", '{"type": "subscribe", "id": "1", "payload": []}'),
    ("subscribe query not a string", '{"type": "subscribe", "id": "1", "payload": {"query": 5}}'),
    ("subscribe id not a string", '{"type": "subscribe", "id": 1, "payload": {"query": "{ __typename }"}}'),
    (
        "subscribe variables not an object",
        '{"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }", "variables": 1}}',
    ),
    ("complete id not a string", '{"type": "complete", "id": [1]}'),
    ("init payload not an object", '{"type": "connection_init", "payload": 1}'),
]
