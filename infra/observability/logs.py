"""Structured logs: one JSON object per line, with whatever `extra=` the caller gave."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from infra.observability import request_context
from services.access.sessions import REFRESH_TOKEN_PREFIX

# Nothing secret reaches the log stream, whatever a request fails with and whichever library
# writes the line: the formatter scrubs every record, at the root (docs/security.md).
# - values under sensitive names, in structured fields (`extra=`) and in text
#   (`"refreshToken": "…"`, `password=…`, `Cookie: …`, `Authorization: …`);
# - bearer and basic credentials, anything shaped like a JWT, this service's refresh tokens
#   (recognisable by their prefix), presigned-URL signatures and credentials;
# - the value in a coercion error ("Variable '$t' got invalid value …", "Int cannot represent
#   non-integer value: …", "Expected value of type …, found …"): client input, whatever its name.
REDACTED = "REDACTED"
_SENSITIVE = (
    r"(?:refresh|access|id|session|csrf|auth)?[_-]?token|password|passwd|passphrase|secret"
    r"|client[_-]?secret|api[_-]?key|private[_-]?key|authorization|cookie|set-cookie|credentials?"
)
_SENSITIVE_KEY = re.compile(rf"^(?:{_SENSITIVE})$", re.IGNORECASE)
_SECRETS = re.compile(
    r"(?P<param>X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|Key-Pair-Id|Policy)=[^&\s\"']+"
    r"|(?P<header>\b(?:authorization|proxy-authorization|cookie|set-cookie)\s*:\s*)[^\r\n\"']+"
    r"|(?P<scheme>\b(?:Bearer|Basic)\s+)[^\s\"',;]+"
    rf"|(?P<pair>(?P<quote>[\"']?)\b(?:{_SENSITIVE})(?P=quote)\s*[:=]\s*)"
    r"(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,;&)}\]]+)"
    r"|(?P<invalid>got invalid value |cannot represent [^:'\"]*value: |Expected value of type [^,]*, found )"
    r"(?:.*?)(?=; |$)"
    r"|eyJ[\w-]+\.[\w-]+\.[\w-]*"
    rf"|{REFRESH_TOKEN_PREFIX}[\w-]+",
    re.IGNORECASE | re.MULTILINE,
)


def redact(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["param"]:
            return f"{match['param']}={REDACTED}"
        for prefix in ("header", "scheme", "pair", "invalid"):
            if match[prefix]:
                return f"{match[prefix]}{REDACTED}"
        return REDACTED

    return _SECRETS.sub(replace, text)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def scrub(value: object) -> object:
    """`value` with every secret in it redacted: strings by `redact`, and whatever a mapping
    holds under a sensitive name (`token`, `refreshToken`, `password`, `cookie`, …) entirely."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and _SENSITIVE_KEY.match(key) else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        if len(items) == 2 and isinstance(items[0], str | bytes) and _SENSITIVE_KEY.match(_text(items[0])):
            return [_text(items[0]), REDACTED]  # a (name, value) pair: a header, a form field
        return [scrub(item) for item in items]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


# Attributes every record has, plus uvicorn's ANSI-coloured duplicate of the message.
_STANDARD = {*vars(logging.makeLogRecord({})), "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        current = request_context.current()
        if current is not None:
            entry.setdefault("request_id", current.request_id)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(scrub(entry))


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Access logs would print query strings, which may carry presigned signatures.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("botocore", "aiobotocore", "werkzeug", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
