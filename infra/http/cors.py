"""Which browser origins may call the API, and what a refused one is told.

Production allows exactly MEDIAGRAPH_CORS_ORIGINS. Development also allows any port of
http://localhost, http://127.0.0.1 and http://[::1], so a dev server on :5173 or :3000 works
with no setting. A refused origin is told (the preflight answers 403 with a body naming the
setting, the WebSocket handshake 403 likewise) and the server logs it once per origin: the
browser itself only shows "Failed to fetch" or a close 1006.

`Cors` wraps the whole application, Starlette's error handler included, so every response to
an allowed origin, a 413 or a 500 too, carries the CORS headers the browser needs to show it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.settings import CORS_SETTING as SETTING

log = logging.getLogger("mediagraph.cors")

LOOPBACK_ORIGINS = re.compile(r"http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]{1,5})?")
_REMEMBERED_REFUSALS = 256


@dataclass(frozen=True)
class CorsPolicy:
    origins: frozenset[str]
    any_loopback_port: bool  # the development profile

    @classmethod
    def of(cls, origins: Iterable[str], *, development: bool) -> CorsPolicy:
        return cls(frozenset(origins), development)

    def allows(self, origin: str) -> bool:
        return origin in self.origins or (
            self.any_loopback_port and LOOPBACK_ORIGINS.fullmatch(origin) is not None
        )

    def describe(self) -> str:
        listed = ", ".join(sorted(self.origins)) or "none"
        loopback = " (and, in development, http://localhost:* and http://127.0.0.1:*)"
        return listed + (loopback if self.any_loopback_port else "")


class _Refusals:
    """Logs each refused origin once per process (a page retries every few seconds)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def log(self, origin: str, what: str, policy: CorsPolicy) -> None:
        if origin in self._seen:
            return
        if len(self._seen) >= _REMEMBERED_REFUSALS:
            self._seen.clear()
        self._seen.add(origin)
        log.warning(
            "%s from origin %r refused: add it to %s (allowed now: %s)",
            what,
            origin[:200],
            SETTING,
            policy.describe(),
        )


REFUSALS = _Refusals()


def refusal_message(origin: str) -> str:
    return f"origin {origin[:200]} is not allowed: add it to {SETTING} on the API server"


class Cors(CORSMiddleware):
    """Starlette's CORS, with the policy above and refusals that say what to do."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        super().__init__(
            app,
            allow_origins=sorted(policy.origins),
            allow_origin_regex=LOOPBACK_ORIGINS.pattern if policy.any_loopback_port else None,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id"],  # what a bug report should quote
            max_age=600,
        )
        self.policy = policy

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:  # type: ignore[override]
        # No frame of its own on a WebSocket's long-lived stack (infra/roots/app.py GraphQLWebSockets);
        # their origin is checked by the GraphQL view (websocket_origin_refused).
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        origin = request_headers["origin"]
        if not self.is_allowed_origin(origin):
            REFUSALS.log(origin, "preflight", self.policy)
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": refusal_message(origin),
                            "extensions": {"code": "FORBIDDEN", "reason": "ORIGIN_NOT_ALLOWED"},
                        }
                    ]
                },
                status_code=403,
                headers={"Vary": "Origin"},
            )
        return super().preflight_response(request_headers)

    async def simple_response(
        self, scope: Scope, receive: Receive, send: Send, request_headers: Headers
    ) -> None:
        # Starlette 1.x calls this for every request, 0.x only for those with an Origin.
        origin = request_headers.get("origin")
        if (
            origin is not None
            and not self.is_allowed_origin(origin)
            and not _same_origin(origin, request_headers.get("host"))
        ):
            REFUSALS.log(origin, "request", self.policy)
        await super().simple_response(scope, receive, send, request_headers)


def _same_origin(origin: str, host: str | None) -> bool:
    try:
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:
        return False


def websocket_origin_refused(policy: CorsPolicy, headers: Headers) -> Response | None:
    """The handshake's refusal for a page on an origin that may not connect, or None.
    No Origin: not a browser, so no ambient credentials to abuse. Same origin: GraphiQL."""
    origin = headers.get("origin")
    if origin is None or policy.allows(origin) or _same_origin(origin, headers.get("host")):
        return None
    REFUSALS.log(origin, "websocket", policy)
    return PlainTextResponse(refusal_message(origin), status_code=403)
