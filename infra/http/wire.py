"""The wire format of GraphQL requests: JSON and the POST body's shape (graphql-transport-ws
messages: subscriptions/ws_messages.py). Checked before Strawberry reads them, which assumes a
JSON object and fails with a 500 (HTTP) or drops the socket without a close frame (WebSocket)
on anything else.

- JSON that Python cannot read is malformed JSON, whatever the reason: invalid UTF-8, nesting
  deeper than the interpreter's stack (json raises RecursionError), bad syntax.
- An integer with more digits than Python converts (4,300) is read as a float (infinity), so a
  5,000-digit variable meets the variable's type and is refused naming the variable, like any
  other number out of range.
- HTTP: a body that is not one JSON object with `query` a string, `variables` and `extensions`
  objects, `operationName` a string (each may be absent or null) is a 400 with a GraphQL error.
"""

from __future__ import annotations

import json
import sys
from typing import Any

# Python refuses to convert longer digit strings to int (a defence against quadratic time).
_MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300
_REQUEST_FIELDS = {"query": str, "variables": dict, "operationName": str, "extensions": dict}
_TYPE_NAMES = {str: "a string", dict: "an object"}


def _int(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else float(text)


def decode_json(data: str | bytes) -> Any:
    """json.loads; anything it cannot read raises JSONDecodeError."""
    try:
        return json.loads(data, parse_int=_int)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None
    except (ValueError, TypeError) as exc:  # invalid UTF-8 (UnicodeDecodeError), ...
        raise json.JSONDecodeError(f"not JSON: {type(exc).__name__}", "", 0) from None


def request_problem(data: object) -> str | None:
    """What is wrong with a decoded POST body, or None if it is one GraphQL request."""
    if isinstance(data, list):
        return "Batching is not enabled: send one JSON object per request"
    if not isinstance(data, dict):
        return "The request body must be a JSON object"
    for name, kind in _REQUEST_FIELDS.items():
        value = data.get(name)
        if value is not None and not isinstance(value, kind):
            return f"`{name}` must be {_TYPE_NAMES[kind]} or null"
    if not data.get("query"):
        return "No GraphQL query found in the request"
    return None
