"""Structured logs: one JSON object per line, with whatever `extra=` the caller gave."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from infra.observability import request_context

# Defence in depth: whatever a library logs, signed-URL signatures, credentials and bearer
# tokens (JWTs) never reach the log stream.
_SECRETS = re.compile(
    r"(?P<param>X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|Key-Pair-Id|Policy)=[^&\s\"]+"
    r"|(?P<bearer>Bearer\s+)[^\s\"]+"
    r"|eyJ[\w-]+\.[\w-]+\.[\w-]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["param"]:
            return f"{match['param']}=REDACTED"
        if match["bearer"]:
            return f"{match['bearer']}REDACTED"
        return "REDACTED"

    return _SECRETS.sub(replace, text)


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
        return redact(json.dumps(entry, default=str))


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
