"""The app for the media(id) throughput benchmark: the real GraphQL view and a bare Starlette
route, both reading the same in-process repository, so the ratio is our GraphQL stack's cost."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.harness import BENCH_SECRET
from infra.app import MediagraphGraphQL
from infra.jwt import JwtTokenVerifier
from infra.settings import Settings
from schema.types.context import Services
from services.gallery import GalleryService
from services.media import Media, MediaStatus, Visibility
from services.pagination import CursorCodec
from services.review import ReviewService
from services.uploads import UploadPolicy, UploadService
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository

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


def build_app() -> Starlette:
    settings = Settings(_env_file=None, jwt_secret=BENCH_SECRET, graphiql=False)
    repo, blobs, bus = InMemoryMediaRepository(), InMemoryBlobStore(), InMemoryEventBus()
    asyncio.run(repo.create(seeded_media()))
    gallery = GalleryService(repo, blobs, bus, CursorCodec(b"k" * 32))
    policy = UploadPolicy(settings.allowed_content_types, settings.max_upload_bytes, 900, 3600)
    services = Services(
        uploads=UploadService(repo, blobs, bus, policy), gallery=gallery, review=ReviewService(repo, bus)
    )
    view = MediagraphGraphQL(settings, services, JwtTokenVerifier(settings))

    async def bare(request: Request) -> Response:
        found = await repo.get(request.path_params["media_id"])
        assert found is not None
        return JSONResponse(
            {
                "data": {
                    "media": {
                        "mediaId": found.id,
                        "status": found.status.value,
                        "title": found.title,
                        "tags": list(found.tags),
                        "size": found.size,
                        "createdAt": found.created_at.isoformat(),
                        "owner": {"id": found.owner_id},
                    }
                }
            }
        )

    return Starlette(routes=[Route("/graphql", view, methods=["POST"]), Route("/bare/{media_id}", bare)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
