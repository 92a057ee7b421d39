"""The response encoder (orjson) writes what the standard library would, as compact text."""

from __future__ import annotations

import json

from infra.http.json import encode_json, encode_json_text

RESULT = {
    "data": {"media": {"title": "Plage à Nice 🌅", "tags": ["a", "b"], "size": 2**53, "url": None}},
    "errors": [{"message": "x", "extensions": {"code": "NOT_FOUND"}, "path": ["media", 0]}],
}


def test_same_json_as_the_standard_library() -> None:
    assert json.loads(encode_json(RESULT)) == RESULT
    assert encode_json_text(RESULT) == json.dumps(RESULT, separators=(",", ":"), ensure_ascii=False)
