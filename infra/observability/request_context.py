"""What the current unit of work is: an HTTP request, a WebSocket connection or a worker message.

A context variable, so every log line written while serving it carries its request id without
each caller passing it along, and the GraphQL layer can tell the access log which operation ran.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from ulid import ULID

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@dataclass(slots=True)
class RequestInfo:
    request_id: str
    protocol: str = "http"  # http | websocket | worker
    operation: str | None = None  # root field(s): bounded, what metrics use
    operation_name: str | None = None  # the client's own name for it: logs only
    operation_type: str | None = None
    user: str | None = None
    error_codes: list[str] = field(default_factory=list)


_current: ContextVar[RequestInfo | None] = ContextVar("mediagraph_request", default=None)


def request_id_from(headers: Mapping[str, str]) -> str:
    # Keep a caller's id (a load balancer's, say) if it is sane; never log arbitrary input.
    given = headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else str(ULID())


def current() -> RequestInfo | None:
    return _current.get()


@contextmanager
def bound(info: RequestInfo) -> Iterator[RequestInfo]:
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)


def bind(info: RequestInfo) -> None:
    """Make `info` current for the rest of this task (a worker message's task ends with it)."""
    _current.set(info)
