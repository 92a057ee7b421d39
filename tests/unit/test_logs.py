"""The JSON log formatter: one object per line, the current request id, nothing secret."""

from __future__ import annotations

import json
import logging

import pytest

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


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (
            "Variable '$t' got invalid value 'opaque-123'; Int cannot represent non-integer value",
            "opaque-123",
        ),
        ("Int cannot represent non-integer value: 'opaque-123'", "opaque-123"),
        ("Expected value of type 'Int!', found \"opaque-123\".", "opaque-123"),
        ('mutation { refreshSession(refreshToken: "opaque-123") { accessToken } }', "opaque-123"),
        ('{"refreshToken": "opaque-123", "first": 3}', "opaque-123"),
        ("{'password': 'opaque-123'}", "opaque-123"),
        ("client_secret=opaque-123&grant_type=x", "opaque-123"),
        ("GET /x?token=opaque-123&y=2", "opaque-123"),
        ("Cookie: a=b; session=opaque-123", "opaque-123"),
        ("authorization: Basic b3BhcXVlLTEyMw==", "b3BhcXVlLTEyMw=="),
        ("store failed for mgrt_opaque-123-Abc_def", "opaque-123"),
        (f"token in a message: {JWT}", JWT),
    ],
)
def test_secrets_in_text_are_redacted(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert secret not in json.dumps(_format(text))


def test_values_under_sensitive_names_are_redacted_whatever_they_are() -> None:
    line = _format(
        "request failed",
        variables={"refreshToken": "opaque-1", "password": "opaque-2", "first": 3, "title": "cat"},
        headers=[("cookie", "opaque-3"), (b"authorization", b"opaque-4"), ("accept", "text/html")],
        secret="opaque-5",
    )
    text = json.dumps(line)
    for n in range(1, 6):
        assert f"opaque-{n}" not in text
    assert '"first": 3' in text and "cat" in text and "text/html" in text


def test_tracebacks_are_redacted() -> None:
    try:
        raise RuntimeError("refresh failed for mgrt_abcdefABCDEF0123456789")
    except RuntimeError as exc:
        record = logging.makeLogRecord(
            {
                "name": "t",
                "levelname": "ERROR",
                "msg": "boom",
                "exc_info": (type(exc), exc, exc.__traceback__),
            }
        )
    line = JsonFormatter().format(record)
    assert "abcdefABCDEF0123456789" not in line and "RuntimeError" in line


def test_ordinary_words_are_left_alone() -> None:
    for text in ("token bucket refilled", "max_tokens=5", "the secret garden", "sha256 3a7bd3e2360a3d"):
        assert redact(text) == text
