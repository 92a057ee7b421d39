"""The server of the hostile-input benchmark (bench/hostile.py): the real GraphQL view over the
in-process repository of bench/media_app.py, with the shipped limits, the parse and validation
caches off (every request pays the full parse and validation), real rate limits in Redis with a
budget no client reaches (every document gets to validation), and /healthz. As the production
API process: the document workers of the production profile (infra/settings.py), and the heap
built at start-up frozen out of the cyclic GC (infra/roots/app.py)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.harness import BENCH_SECRET
from bench.media_app import _services, page_items
from infra.http.server import server_config
from infra.identity.jwt import JwtTokenVerifier
from infra.observability.operations import PrometheusOperations
from infra.redis.rate_limit import FallbackRateLimiter, LocalRateLimiter, RedisRateLimiter
from infra.roots.app import MediagraphGraphQL
from infra.settings import Profile, Settings
from schema import documents
from schema.document_workers import DocumentWorkers
from schema.observability import record_operations_with
from services.access.rate_limits import Limit, RateLimitPolicy, RateLimitService
from tests.fakes import InMemoryMediaRepository

BUDGET = Limit(per_minute=10_000_000, burst=10_000_000)


def production_settings() -> Settings:
    """The production profile's settings on this machine (its document workers, its server)."""
    settings = Settings(_env_file=None, jwt_secret=BENCH_SECRET)
    return settings.model_copy(update={"profile": Profile.PRODUCTION})


def document_workers(processes: int | None = None) -> DocumentWorkers | None:
    """The document workers the production profile starts here (count, policy, niceness);
    `processes` overrides the count."""
    settings = production_settings()
    count = settings.effective_document_workers if processes is None else processes
    if not count:
        return None
    return DocumentWorkers(count, nice=settings.document_worker_nice, policy=settings.document_worker_policy)


def build_app(redis_url: str, workers: DocumentWorkers | None = None) -> Starlette:
    """`workers`, if given, are started by the app's lifespan (or by the caller)."""
    documents.caching = False
    # As the API's composition root does (infra/roots/app.py): metrics, the access log's fields,
    # and spans only while tracing is on.
    record_operations_with(PrometheusOperations())
    settings = Settings(_env_file=None, jwt_secret=BENCH_SECRET, graphiql=False)
    memory = InMemoryMediaRepository()
    for media in page_items():
        asyncio.run(memory.create(media))
    limiter = FallbackRateLimiter(
        RedisRateLimiter(Redis.from_url(redis_url), prefix=f"bench:{os.getpid()}:"), LocalRateLimiter()
    )
    services = dataclasses.replace(
        _services(settings, memory),
        rate_limits=RateLimitService(limiter, RateLimitPolicy(per_user=BUDGET, per_ip=BUDGET)),
    )
    view = MediagraphGraphQL(settings, services, JwtTokenVerifier(settings.tokens), document_workers=workers)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if workers is not None:
            await workers.start()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            if workers is not None:
                await workers.aclose()

    return Starlette(
        routes=[Route("/graphql", view, methods=["POST"]), Route("/healthz", healthz)], lifespan=lifespan
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument(
        "--document-workers", type=int, default=None, help="default: the production profile's"
    )
    args = parser.parse_args()
    app = build_app(args.redis_url, document_workers(args.document_workers))
    # As production serves (infra/http/server.py): its HTTP protocol, header limits, read deadline.
    config = server_config(
        app,
        production_settings().server,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run()
