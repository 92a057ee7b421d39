"""The JSON encoder of GraphQL responses: orjson, several times faster than the standard
library's on result trees (docs/performance.md)."""

from __future__ import annotations

import orjson


def encode_json(data: object) -> bytes:
    """Compact JSON. Result trees hold only JSON types (Strawberry serialised the scalars)."""
    return orjson.dumps(data)


def encode_json_text(data: object) -> str:
    """The same, as text: WebSocket messages go out as text frames (graphql-transport-ws)."""
    return orjson.dumps(data).decode()
