"""The JSON log formatter: one object per line, the current request id, nothing secret."""

from __future__ import annotations

import json
import logging

from infra.observability import request_context
from infra.observability.logs import JsonFormatter, redact
from infra.observability.request_context import RequestInfo

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"


def _format(message: str, **extra: object) -> dict[str, object]:
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "msg": message, **extra})
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_lines_carry_the_current_request_id() -> None:
    assert "request_id" not in _format("outside")
    with request_context.bound(RequestInfo("req-0123456789")):
        assert _format("inside")["request_id"] == "req-0123456789"
        # An explicit id (the worker's: the upload's request) wins over the current one.
        assert _format("explicit", request_id="other-0123456789")["request_id"] == "other-0123456789"


def test_signatures_and_tokens_are_redacted() -> None:
    url = "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123&X-Amz-Expires=900"
    line = _format(
        f"PUT {url}", authorization=f"Bearer {JWT}", cloudfront="x?Policy=p&Signature=s&Key-Pair-Id=K"
    )
    text = json.dumps(line)
    for secret in ("abc123", "AKIA", JWT, "Signature=s", "Policy=p", "Key-Pair-Id=K"):
        assert secret not in text
    assert "X-Amz-Expires=900" in text  # the rest of the URL stays readable


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("media processed in 12 ms") == "media processed in 12 ms"
