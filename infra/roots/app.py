"""The composition root of the API process: the Starlette app, its lifespan (the runtime and the
view-count flush) and the GraphQL view; `serve` runs it under uvicorn."""

from __future__ import annotations

import functools
import gc
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from infra.http import graphiql, wire
from infra.http.body_limit import BodyLimit
from infra.http.client_ip import client_address, parse_networks
from infra.http.cors import Cors, CorsPolicy, websocket_origin_refused
from infra.http.json import encode_json_text
from infra.http.request_log import RequestLog, WebSocketRegistry
from infra.http.server import ApiServer, server_config
from infra.identity.dev_sign_in import TOKEN_TTL_S, sign_in_route
from infra.identity.jwt import issue_dev_token
from infra.identity.token_cache import CachedTokenVerifier
from infra.observability import metrics
from infra.observability.metrics import serving_metrics
from infra.observability.operations import PrometheusOperations
from infra.observability.request_context import request_id_from
from infra.roots.runtime import Runtime, open_runtime
from infra.roots.scheduler import Job, Scheduler
from infra.settings import Settings, check_api_settings
from schema.document_workers import DocumentWorkers
from schema.extensions import shape_error
from schema.observability import record_operations_with
from schema.root import build_schema
from schema.types.context import Context
from services.access.read_scope import read_scope
from services.bundle import Services
from services.core.auth import Principal
from services.core.errors import Unauthenticated
from services.core.ports import TokenVerifier
from subscriptions.fanout import FanOut
from subscriptions.ws_guard import (
    ConnectionLimits,
    GuardedTransportWSHandler,
    Refusal,
    WebSocketRefused,
    refuse_handshake,
)

log = logging.getLogger("mediagraph.api")


def _bearer(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


def _refusal(status: int, message: str, reason: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT", "reason": reason}}]},
        status_code=status,
    )


def _http_refusal(exc: HTTPException) -> JSONResponse:
    """Strawberry's HTTP refusals (malformed body, method, missing query) as GraphQL errors."""
    code = "NOT_FOUND" if exc.status_code == 404 else "BAD_USER_INPUT"
    reason = "MALFORMED_REQUEST" if exc.status_code == 400 else "NOT_SERVED"
    return JSONResponse(
        {"errors": [{"message": exc.reason, "extensions": {"code": code, "reason": reason}}]},
        status_code=exc.status_code,
    )


class MediagraphGraphQL(GraphQL[Context, None]):
    # Declared, not assigned in __init__: the guard (token expiry, per-user slots) is a subclass
    # of the shared fan-out's handler, so no line order can drop one or the other.
    graphql_transport_ws_handler_class = GuardedTransportWSHandler

    def __init__(
        self,
        settings: Settings,
        services: Services,
        tokens: TokenVerifier,
        *,
        graphiql_token: Callable[[], str] | None = None,
        document_workers: DocumentWorkers | None = None,
    ) -> None:
        super().__init__(
            build_schema(),
            graphql_ide="graphiql" if settings.graphiql and not settings.is_production else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_s),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
            # Any: the handshake's Origin is checked before Strawberry sees it (_websocket), by
            # the CORS policy, with a refusal that names our setting.
            allowed_origins=("*",),
        )
        self.cors = CorsPolicy.of(settings.cors_origins, development=not settings.is_production)
        self.services = services
        self.tokens = CachedTokenVerifier(tokens)  # a client's token is verified once a minute
        self.graphiql_token = graphiql_token  # `mediagraph dev`: a token for the headers tab
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self.production = settings.is_production
        self.document_workers = document_workers
        self.limits = ConnectionLimits(
            settings.ws_max_connections_per_user, settings.ws_max_connections_per_address
        )
        self.fanout = FanOut(settings.subscriber_queue_size, on_pass=metrics.count_fanout_pass)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        # No frame of its own on a WebSocket's long-lived stack (see GraphQLWebSockets).
        if scope["type"] == "websocket":
            return self._websocket(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            # CSRF: a browser sends text/plain, form-encoded and multipart bodies cross-site
            # without a preflight; JSON needs one, which the CORS allow-list then refuses.
            media_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                response = _refusal(415, "POST /graphql takes application/json", "UNSUPPORTED_MEDIA_TYPE")
                await response(scope, receive, send)
                return
        if scope["type"] == "http":
            # Authenticate before GraphQL runs: a bad token is a 401, not a partial result.
            token = _bearer(Request(scope).headers.get("authorization"))
            principal = None
            if token is not None:
                try:
                    principal = await self.tokens.verify(token)
                except Unauthenticated as exc:
                    response = JSONResponse(
                        {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]},
                        status_code=401,
                        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                    )
                    await response(scope, receive, send)
                    return
            scope.setdefault("state", {})["principal"] = principal
            # GraphQL.__call__'s HTTP branch, with its refusals answered as GraphQL errors, and
            # one look at the friend graph per request (services/access/read_scope.py).
            served: Response
            with read_scope():
                try:
                    served = await self.run(Request(scope, receive=receive))
                except HTTPException as exc:
                    served = _http_refusal(exc)
            await served(scope, receive, send)
            return
        with read_scope():
            await super().__call__(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        # HTTP bodies and WebSocket messages alike: whatever json cannot read is malformed JSON.
        return wire.decode_json(data)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """A POST body is JSON here (anything else got 415 in _http) and parse_json checks it
        whole, so Strawberry's own parsing of the Content-Type header (the email package's
        parser: ~2 % of a cached read's CPU) has nothing left to decide."""
        if request.method != "POST":
            return await super().parse_http_body(request)
        transport = self._get_stream_transport_from_headers(request.headers)
        data = self.parse_json(await request.get_body())
        return GraphQLRequestData(
            query=data["query"],
            variables=data.get("variables"),
            operation_name=data.get("operationName"),
            extensions=data.get("extensions"),
            protocol=transport.protocol if transport else "http",
        )

    def parse_json(self, data: str | bytes) -> Any:
        try:
            decoded = wire.decode_json(data)
        except json.JSONDecodeError as exc:
            raise HTTPException(400, "Unable to parse the request body as JSON") from exc
        problem = wire.request_problem(decoded)
        if problem is not None:
            raise HTTPException(400, problem)
        return decoded

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        refusal = websocket_origin_refused(self.cors, headers)
        if refusal is not None:
            await refuse_handshake(send, scope, refusal)
            return
        peer = scope["client"][0] if scope.get("client") else None
        address = client_address(peer, headers.get("x-forwarded-for"), self.trusted_proxies) or "-"
        if not self.limits.acquire_address(address):
            log.warning("websocket refused: too many from one address")
            await refuse_handshake(send)
            return
        # Message size and clients that stop reading are the protocol's (infra/http/ws_protocol.py).
        try:
            await self.run(WebSocket(scope, receive=receive, send=send))  # GraphQL.__call__'s branch
        finally:
            self.limits.release_address(address)

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql.page(request, self.graphiql_token)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: Strawberry sends bytes as binary WebSocket frames.
        return encode_json_text(data)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Syntax errors raised by the parser cache bypass the ErrorCodes extension: shape here
        # whatever still has no code, so every error a client sees carries one.
        if result.errors and any("code" not in (error.extensions or {}) for error in result.errors):
            request_id = request.scope.get("state", {}).get("request_id", "-")
            result.errors = [
                error
                if "code" in (error.extensions or {})
                else shape_error(error, request_id, hide_suggestions=self.production)
                for error in result.errors
            ]
        return process_result(result)

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:
        principal: Principal | None = None
        if isinstance(request, Request):
            principal = request.scope.get("state", {}).get("principal")
            if principal is not None:
                # A user exists once they have called the API with a valid token.
                await self.services.social.touch(principal)
        peer = request.client.host if request.client else None
        # RequestLog chose the id (and logs it); the same one goes into the record and the worker.
        request_id = request.scope.get("state", {}).get("request_id") or request_id_from(request.headers)
        return Context(
            services=self.services,
            request_id=request_id,
            principal=principal,
            client_ip=client_address(peer, request.headers.get("x-forwarded-for"), self.trusted_proxies),
            production=self.production,
            document_workers=self.document_workers,
        )

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        params = context.connection_params or {}
        context.connection_params = None  # the token need not stay in memory as long as the socket
        header = params.get("Authorization") or params.get("authorization")
        token = _bearer(header)
        if token is None:
            raise WebSocketRefused(Refusal.MISSING)
        if not token:
            raise WebSocketRefused(Refusal.NOT_BEARER)
        try:
            principal = await self.tokens.verify(token)
        except Unauthenticated as exc:
            expired = exc.extensions.get("reason") == "TOKEN_EXPIRED"
            raise WebSocketRefused(Refusal.EXPIRED if expired else Refusal.INVALID) from exc
        if not self.limits.acquire_user(id(context), principal.user_id):
            log.warning("websocket refused: too many for one user")
            raise WebSocketRefused(Refusal.TOO_MANY)
        context.principal = principal
        await self.services.social.touch(principal)
        return None


@asynccontextmanager
async def document_workers(settings: Settings) -> AsyncIterator[DocumentWorkers | None]:
    """The processes that parse and validate documents off the event loop, if the settings ask
    for them (MEDIAGRAPH_DOCUMENT_WORKERS): started before the first request, closed at the end."""
    processes = settings.effective_document_workers
    if not processes:
        yield None
        return
    workers = DocumentWorkers(
        processes, nice=settings.document_worker_nice, policy=settings.document_worker_policy
    )
    await workers.start()
    try:
        yield workers
    finally:
        await workers.aclose()


def api_jobs(runtime: Runtime) -> list[Job]:
    """Move view counts from Redis to DynamoDB now and then, and once more at shutdown so none
    is lost (any API process may do it: the take is atomic)."""
    return [
        Job("view-flush", runtime.settings.view_flush_every_s, runtime.services.views.flush, at_stop=True)
    ]


class _GraphQLEndpoint:
    """ASGI endpoint forwarding to the view built in the lifespan (it needs the open clients)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["app"].state.graphql(scope, receive, send)


class GraphQLWebSockets:
    """/graphql WebSockets go straight to the GraphQL view, past the body limit, Starlette's
    exception middleware, router and route: none of them acts on a WebSocket, and each is a
    suspended frame held for as long as the client stays connected (idle subscribers are many:
    docs/realtime.md). Other WebSocket paths go on to the router, which refuses them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket" and scope["path"] == "/graphql":
            return scope["app"].state.graphql(scope, receive, send)  # type: ignore[no-any-return]
        return self.app(scope, receive, send)


class GraphQLPosts:
    """POST /graphql, once the body limit let it through, goes straight to the GraphQL view, past
    Starlette's exception middleware, router and route: the view answers its own refusals
    (HTTPException included), and those three layers cost a request as much as its routing is
    worth (docs/performance.md). Anything else goes on to the router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/graphql":
            return scope["app"].state.graphql(scope, receive, send)  # type: ignore[no-any-return]
        return self.app(scope, receive, send)


class CorsOutermost(Starlette):
    """CORS outside everything, Starlette's 500 handler included: the browser can read every
    error (413, 401, 500) instead of reporting a network error."""

    def __init__(self, cors: CorsPolicy, **kwargs: Any) -> None:
        self.cors = cors
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return Cors(super().build_middleware_stack(), self.cors)


def create_app(
    settings: Settings,
    *,
    dev_sign_in: bool = False,
    open_runtime: Callable[[Settings], AbstractAsyncContextManager[Runtime]] = open_runtime,
) -> Starlette:
    """`dev_sign_in` adds POST /dev/sign-in: only `mediagraph dev` on loopback passes it.
    `open_runtime` opens the process-wide parts (the benchmark swaps DynamoDB and S3 for in-process
    stores: bench/read_app.py)."""
    check_api_settings(settings)
    record_operations_with(PrometheusOperations())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_runtime(settings) as runtime, document_workers(settings) as workers:
            services = runtime.services
            app.state.graphql = MediagraphGraphQL(
                settings, services, runtime.tokens, graphiql_token=graphiql_token, document_workers=workers
            )
            app.state.runtime = runtime
            # Everything loaded so far (boto models, the schema, ...) lives as long as the
            # process: keep it out of the cyclic GC, whose full passes over it stalled every
            # subscriber for a few hundred ms under load (docs/realtime.md).
            gc.freeze()
            try:
                async with Scheduler(api_jobs(runtime)):
                    yield {}
            finally:
                # Hand the frozen objects back to the collector: an app that stops (every test's
                # app, a reload) must not keep its whole heap alive for the rest of the process.
                gc.unfreeze()

    graphql = _GraphQLEndpoint()

    async def jwks(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        return JSONResponse(runtime.issuer.jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if websockets.draining:
            return JSONResponse({"status": "shutting down", "checks": {}}, status_code=503)
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, str] = {}
        for name, ping in (
            ("dynamodb", runtime.repo.ping),
            ("s3", runtime.blobs.ping),
            ("redis", runtime.bus.ping),
        ):
            try:
                await ping()
                checks[name] = "ok"
            except Exception as exc:
                log.warning("readiness check failed", extra={"dependency": name, "error": type(exc).__name__})
                checks[name] = "unavailable"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    websockets = WebSocketRegistry()
    middleware = [
        Middleware(RequestLog, websockets=websockets),
        Middleware(GraphQLWebSockets),
        Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
        Middleware(GraphQLPosts),
    ]
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/.well-known/jwks.json", jwks),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if settings.graphiql and not settings.is_production:
        routes.append(graphiql.asset_route())
    graphiql_token: Callable[[], str] | None = None
    if dev_sign_in:
        routes.append(sign_in_route(settings.tokens, production=settings.is_production))
        graphiql_token = functools.partial(issue_dev_token, settings.tokens, "alice", ttl_s=TOKEN_TTL_S)

    app = CorsOutermost(
        CorsPolicy.of(settings.cors_origins, development=not settings.is_production),
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.websockets = websockets  # ApiServer closes them with 1001 at shutdown
    return app


def serve(settings: Settings, *, host: str, port: int) -> None:
    """`mediagraph serve`: the API under uvicorn until SIGINT/SIGTERM; /metrics on its own listener."""
    app = create_app(settings)
    with serving_metrics(settings.metrics_host, settings.metrics_port):
        ApiServer(server_config(app, settings.server, host=host, port=port)).run()
