"""Reading a user's event stream straight from Redis, as the tests check it."""

from __future__ import annotations

import json
from typing import Any

from services.core.events import MediaEvent


async def stream_entries(redis: Any, key: str) -> list[tuple[str, dict[bytes, bytes]]]:
    """(id, fields) of every entry of the stream at `key`, oldest first."""
    entries = await redis.xrange(key) or []
    return [(_text(entry_id), dict(fields or {})) for entry_id, fields in entries]


async def stream_events(redis: Any, key: str) -> list[MediaEvent]:
    return [
        MediaEvent.from_record(json.loads(fields[b"e"])) for _, fields in await stream_entries(redis, key)
    ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
