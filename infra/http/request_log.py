"""ASGI middleware: a request id, a server span and ONE JSON log line per HTTP request; the
open WebSockets counted and remembered, so a shutdown can close them with 1001 (going away).

Logged: method, path (never the query string: presigned signatures live there), status,
duration, request id, and what the GraphQL layer filled in (operation, user, error codes).
Never headers: they carry bearer tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.observability import metrics, request_context
from infra.observability.request_context import RequestInfo
from infra.observability.tracing import active, tracer

log = logging.getLogger("mediagraph.access")
# Probes and scrapes every few seconds would drown the real requests at INFO.
_QUIET_PATHS = {"/healthz", "/readyz"}
GOING_AWAY = 1001


class WebSocketRegistry:
    """The accepted, still open WebSockets of this process."""

    def __init__(self) -> None:
        self._open: dict[int, Send] = {}
        self.draining = False

    def __len__(self) -> int:
        return len(self._open)

    def add(self, key: int, send: Send) -> None:
        self._open[key] = send

    def discard(self, key: int) -> None:
        self._open.pop(key, None)

    async def close_all(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        """Stop taking new WebSockets and close the open ones with `code`."""
        self.draining = True
        sends = list(self._open.values())
        self._open.clear()

        async def close(send: Send) -> None:
            # The connection may be closing on its own meanwhile: then there is nothing to do.
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": code, "reason": reason})

        await asyncio.gather(*(close(send) for send in sends))


class RequestLog:
    def __init__(self, app: ASGIApp, websockets: WebSocketRegistry) -> None:
        self.app = app
        self.websockets = websockets

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the branch's coroutine rather than awaiting it: a WebSocket's stack lives as
        # long as its client, and a pass-through frame is memory held per idle subscriber.
        if scope["type"] == "http":
            return self._http(scope, receive, send)
        if scope["type"] == "websocket":
            return self._websocket(scope, receive, send)
        return self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        info = RequestInfo(request_id_of(scope, headers))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                request_id = (b"x-request-id", info.request_id.encode())
                message["headers"] = [*message.get("headers", []), request_id]
            await send(message)

        method, path = scope["method"], scope["path"]
        # Probes and scrapes are not traced; span names never carry an arbitrary (404) path.
        traced = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT) if path in _QUIET_PATHS else None
        with (
            request_context.bound(info),
            trace.use_span(traced)
            if traced is not None
            else _request_span(method, path, headers, info.request_id) as span,
        ):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                span.set_attribute("http.response.status_code", status)
                fields: dict[str, Any] = {
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "operation": info.operation,
                    "operation_name": info.operation_name,
                    "operation_type": info.operation_type,
                    "user": info.user,
                    "error_codes": info.error_codes or None,
                }
                level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
                log.log(level, "request", extra={k: v for k, v in fields.items() if v is not None})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = RequestInfo(request_id_of(scope, Headers(scope=scope)), protocol="websocket")
        if self.websockets.draining:
            await send({"type": "websocket.close", "code": GOING_AWAY})
            return
        key = id(scope)
        accepted = False
        close_code: int | None = None
        started = time.perf_counter()

        async def tracked_send(message: Message) -> None:
            nonlocal accepted, close_code
            if message["type"] == "websocket.accept":
                accepted = True
                self.websockets.add(key, tracked_send)
                metrics.WEBSOCKETS_OPEN.inc()
                log.info("websocket opened", extra={"path": scope["path"]})
            elif message["type"] == "websocket.close":
                self.websockets.discard(key)
                if close_code is None:
                    close_code = message.get("code", 1000)
            await send(message)

        with request_context.bound(info):
            try:
                await self.app(scope, receive, tracked_send)
            finally:
                self.websockets.discard(key)
                if accepted:
                    metrics.WEBSOCKETS_OPEN.dec()
                    log.info(
                        "websocket closed",
                        extra={
                            "close_code": close_code,
                            "user": info.user,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        },
                    )


def _request_span(method: str, path: str, headers: Headers, request_id: str) -> AbstractContextManager[Span]:
    found = tracer()
    if not active():  # nothing exported: no need to read the caller's trace headers
        return found.start_as_current_span(method)
    return found.start_as_current_span(
        f"{method} {path}" if path == "/graphql" else method,
        context=propagate.extract(dict(headers)),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path, "mediagraph.request_id": request_id},
    )


def request_id_of(scope: Scope, headers: Headers) -> str:
    """The request id, chosen once per request and remembered in the scope for the GraphQL context."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = request_context.request_id_from(headers)
    request_id: str = state["request_id"]
    return request_id
