"""The app for the throughput benchmarks: the real GraphQL view and bare Starlette routes
returning the same JSON from the same source, so each ratio is our GraphQL stack's cost."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.harness import BENCH_SECRET
from infra.identity.jwt import JwtTokenVerifier
from infra.redis.page_cache import CachedMediaRepository
from infra.roots.app import MediagraphGraphQL
from infra.settings import Settings
from services.bundle import Services
from services.core.media import Media, MediaStatus, Visibility
from services.core.ports import MediaRepository
from tests.builders import Fakes, build_services
from tests.fakes import InMemoryMediaRepository

MEDIA_ID = "01JBENCHMEDIA0000000000000"
QUERY = "query($id: ID!) { media(id: $id) { mediaId status title tags size createdAt owner { id } } }"


def seeded_media() -> Media:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Media(
        id=MEDIA_ID,
        owner_id="alice",
        status=MediaStatus.COMPLETED,
        filename="a.jpg",
        content_type="image/jpeg",
        size=123456,
        sha256="0" * 64,
        title="Sunset",
        tags=("sunset", "beach"),
        visibility=Visibility.PUBLIC,
        object_key=f"uploads/{MEDIA_ID}",
        created_at=now,
        updated_at=now,
    )


PAGE_QUERY = (
    "{ feed(first: 50) { edges { node { mediaId status title tags size createdAt owner { id } } } } }"
)


def _node(media: Media) -> dict[str, object]:
    return {
        "mediaId": media.id,
        "status": media.status.value,
        "title": media.title,
        "tags": list(media.tags),
        "size": media.size,
        "createdAt": media.created_at.isoformat(),
        "owner": {"id": media.owner_id},
    }


def _services(settings: Settings, repo: MediaRepository) -> Services:
    return build_services(
        Fakes(repo=repo),
        content_types=settings.allowed_content_types,
        max_upload_bytes=settings.max_upload_bytes,
    )


def page_items(count: int = 60) -> list[Media]:
    first = seeded_media()
    return [first] + [
        dataclasses.replace(
            first, id=f"01JBENCHMEDIA{i:013d}", created_at=first.created_at - timedelta(minutes=i)
        )
        for i in range(1, count)
    ]


def build_app(redis_url: str) -> Starlette:
    """Routes, each pair reading one source: the in-process repository, or the Redis page cache
    in front of it (warm after the first request)."""
    settings = Settings(_env_file=None, jwt_secret=BENCH_SECRET, graphiql=False)
    memory = InMemoryMediaRepository()
    for media in page_items():
        asyncio.run(memory.create(media))
    cached = CachedMediaRepository(memory, Redis.from_url(redis_url), prefix=f"bench:{os.getpid()}:")
    tokens = JwtTokenVerifier(settings.tokens)
    views = {
        name: MediagraphGraphQL(settings, _services(settings, repo), tokens)
        for name, repo in (("memory", memory), ("cached", cached))
    }

    async def bare_media(request: Request) -> Response:
        found = await memory.get(request.path_params["media_id"])
        assert found is not None
        return JSONResponse({"data": {"media": _node(found)}})

    def bare_page(repo: MediaRepository) -> Any:
        async def endpoint(request: Request) -> Response:
            page = await repo.list_completed(Visibility.PUBLIC, limit=50, after=None)
            return JSONResponse({"data": {"feed": {"edges": [{"node": _node(m)} for m in page.items]}}})

        return endpoint

    return Starlette(
        routes=[
            Route("/graphql", views["memory"], methods=["POST"]),
            Route("/graphql-cached", views["cached"], methods=["POST"]),
            Route("/bare/page", bare_page(memory)),
            Route("/bare/page-cached", bare_page(cached)),
            Route("/bare/{media_id}", bare_media),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.redis_url), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
