"""Opaque, signed cursors: a position in one listing, bound to the query and the caller."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from services.core.errors import BadUserInput

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_MAX_CURSOR_LENGTH = 512
_MAC_BYTES = 16


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE_SIZE}", field="first")
    return first


@dataclass(frozen=True, slots=True)
class CursorCodec:
    """Signs positions so that a client can neither forge one nor replay it elsewhere.

    The scope (listing name, its arguments and the caller's id) is part of the MAC, so a
    cursor of another query or another user fails verification like a tampered one.
    """

    key: bytes

    def encode(self, position: str, scope: str) -> str:
        body = json.dumps([position], separators=(",", ":")).encode()
        # Fixed-length MAC at the end: no separator, whose byte the MAC itself could contain.
        return base64.urlsafe_b64encode(body + self._mac(body, scope)).decode().rstrip("=")

    def decode(self, cursor: str | None, scope: str) -> str | None:
        if cursor is None:
            return None
        if len(cursor) > _MAX_CURSOR_LENGTH:
            raise BadUserInput("invalid cursor", field="after")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
            if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(body, scope)):
                raise ValueError("bad mac")
            (position,) = json.loads(body)
            if not isinstance(position, str):
                raise ValueError("bad position")
            return position
        except (ValueError, TypeError) as exc:
            raise BadUserInput("invalid cursor", field="after") from exc

    def _mac(self, body: bytes, scope: str) -> bytes:
        return hmac.new(self.key, scope.encode() + b"\0" + body, hashlib.sha256).digest()[:_MAC_BYTES]
