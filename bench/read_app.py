"""The server process of bench/read_world.py: three ways to answer the same reads from the same
in-process world, under one uvicorn, measured in turn.

- `/graphql`: the real application, `create_app` with its middleware, at the production profile,
  with the real Redis rate limiter, URL cache and view counter; only DynamoDB and S3 are swapped
  for in-process stores (moto would hide our cost behind its own).
- `/stock`: a stock Strawberry server: the same types and queries written plainly, Strawberry's
  defaults, no extensions, synchronous field resolvers, the same batched service calls (made by
  the root resolver) and the same JSON encoder.
- `/bare/...`: bare Starlette routes making the same batched service calls, same encoder.

The world: OWNERS owners with MEDIA_PER_OWNER media each (PUBLIC, FRIENDS, PRIVATE), every one
with its thumbnails; VIEWER_KINDS kinds of viewer (friends of some owners, blocked by some,
strangers, liking some), ACCOUNTS_PER_KIND accounts each.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import hashlib
import hmac
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import strawberry
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from bench.harness import BENCH_SECRET
from infra.http.json import encode_json
from infra.http.server import server_config
from infra.redis.delivery import RedisUrlCache, RedisViewRecorder
from infra.roots.app import create_app
from infra.roots.runtime import Runtime, open_runtime
from infra.settings import Settings
from services.access.rate_limits import Limit, RateLimitPolicy, RateLimitService
from services.bundle import Services
from services.community.engagement import EngagementService
from services.community.feed import FeedService
from services.core.auth import Principal
from services.core.errors import NotFound
from services.core.media import Media, MediaStatus, Variant, Visibility
from services.core.pagination import CursorCodec
from services.core.ports import ListFilter, MediaStats, Page, Relations
from services.ingest.uploads import UploadPolicy, UploadService
from services.library.delivery import UrlMinter
from services.library.editing import EditingService
from services.library.gallery import GalleryService
from services.library.review import ReviewService
from services.library.views import ViewService
from tests.builders import build_services
from tests.fakes import (
    InMemoryBlobStore,
    InMemoryEngagementStore,
    InMemoryEventBus,
    InMemoryMediaRepository,
    InMemoryRateLimiter,
    InMemorySnapshotStore,
)

OWNERS = 20
MEDIA_PER_OWNER = 60
VIEWER_KINDS = 10
ACCOUNTS_PER_KIND = 200
BASE = datetime(2026, 1, 1, tzinfo=UTC)

_NODE = "id mediaId status title tags size createdAt visibility owner { id } url likeCount likedByMe"
MEDIA_QUERY = f"query Media($id: ID!) {{ media(id: $id) {{ {_NODE} thumbnails {{ url width height }} }} }}"
PAGE_QUERY = (
    "query Gallery($owner: ID!) { userMedia(userId: $owner, first: 50) { "
    f"edges {{ cursor node {{ {_NODE} thumbnails {{ url width height }} }} }} "
    "pageInfo { hasNextPage endCursor } } }"
)


def owner_id(n: int) -> str:
    return f"owner{n:02d}"


def media_id(owner: int, n: int) -> str:
    return f"01JBENCH{owner:02d}{n:016d}"


def viewer_id(kind: int, account: int) -> str:
    return f"viewer{kind}-{account:04d}"


def world_media() -> list[Media]:
    items = []
    for o in range(OWNERS):
        for n in range(MEDIA_PER_OWNER):
            mid = media_id(o, n)
            created = BASE - timedelta(minutes=o * MEDIA_PER_OWNER + n)
            visibility = (Visibility.PUBLIC, Visibility.PUBLIC, Visibility.FRIENDS, Visibility.PRIVATE)[n % 4]
            items.append(
                Media(
                    id=mid,
                    owner_id=owner_id(o),
                    status=MediaStatus.COMPLETED,
                    filename=f"{n}.jpg",
                    content_type="image/jpeg",
                    size=100_000 + n,
                    sha256=f"{o:02d}{n:062d}",
                    title=f"Photo {n} of {owner_id(o)}",
                    tags=("sunset", "beach") if n % 2 else ("city",),
                    visibility=visibility,
                    object_key=f"uploads/{mid}",
                    created_at=created,
                    updated_at=created,
                    completed_at=created,
                    variants=tuple(
                        Variant(name, f"derived/{mid}/{name}.webp", size, size * 3 // 4)
                        for name, size in (("display", 1600), ("thumb-small", 160), ("thumb-large", 640))
                    ),
                )
            )
    return items


class IndexedRepository(InMemoryMediaRepository):
    """The fake, with each owner's listing kept sorted (the world is read-only): a listing costs
    what a DynamoDB Query costs us in CPU, not a sort of the whole table."""

    def __init__(self, items: list[Media]) -> None:
        super().__init__()
        self._items = {media.id: media for media in items}
        self._by_owner: dict[str, tuple[list[str], list[Media]]] = {}
        for owner in {m.owner_id for m in items}:
            mine = sorted((m for m in items if m.owner_id == owner), key=self.position_of)
            self._by_owner[owner] = ([self.position_of(m) for m in mine], mine)

    async def list_by_owner(
        self, owner_id: str, *, limit: int, after: str | None, filter: ListFilter | None = None
    ) -> Page:
        positions, items = self._by_owner.get(owner_id, ([], []))
        end = len(items) if after is None else bisect.bisect_left(positions, after)
        page = items[max(0, end - limit) : end][::-1]
        return Page(page, end > limit, self.position_of(page[-1]) if page else None)


class IndexedEngagement(InMemoryEngagementStore):
    """The fake, with counters kept per media (it scans every like otherwise)."""

    def __init__(self, likes: set[tuple[str, str]]) -> None:
        super().__init__()
        self.likes = likes
        self._counts = Counter(media for media, _ in likes)

    async def stats(self, media_ids: list[str]) -> dict[str, MediaStats]:
        return {m: MediaStats(like_count=self._counts[m], view_count=self.views.get(m, 0)) for m in media_ids}


class FriendGraph:
    def __init__(self, friends: set[tuple[str, str]], blocked: set[tuple[str, str]]) -> None:
        self._friends, self._blocked = friends, blocked

    async def relations(self, user_id: str, others: set[str]) -> Relations:
        return Relations(
            friends=frozenset(o for o in others if (user_id, o) in self._friends),
            blocked=frozenset(o for o in others if (user_id, o) in self._blocked),
        )


def relations_of_world() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Kind k is a friend of owners o with o % VIEWER_KINDS < k, and blocked by owner k (one
    owner in twenty hides everything from them); kind 0 has no friends."""
    friends: set[tuple[str, str]] = set()
    blocked: set[tuple[str, str]] = set()
    for kind in range(VIEWER_KINDS):
        for account in range(ACCOUNTS_PER_KIND):
            viewer = viewer_id(kind, account)
            for o in range(OWNERS):
                if o % VIEWER_KINDS < kind:
                    friends |= {(viewer, owner_id(o)), (owner_id(o), viewer)}
            blocked |= {(viewer, owner_id(kind)), (owner_id(kind), viewer)}
    return friends, blocked


@dataclasses.dataclass
class World:
    repo: IndexedRepository
    graph: FriendGraph
    engagement: IndexedEngagement
    blobs: InMemoryBlobStore

    @classmethod
    def build(cls) -> World:
        media = world_media()
        likes = {
            (item.id, viewer_id(kind, i % ACCOUNTS_PER_KIND))
            for i, item in enumerate(media[::7])
            for kind in range(VIEWER_KINDS)
        }
        engagement = IndexedEngagement(likes)
        return cls(
            IndexedRepository(media), FriendGraph(*relations_of_world()), engagement, InMemoryBlobStore()
        )

    def services(self, settings: Settings, redis: Any) -> Services:
        """The services of production, on the in-process stores; Redis-backed parts are real."""
        bus, cursors = InMemoryEventBus(), CursorCodec(b"b" * 32)
        urls = UrlMinter(_Signer(), RedisUrlCache(redis, settings.redis_prefix), ttl_s=settings.url_ttl_s)
        gallery = GalleryService(self.repo, self.blobs, bus, cursors, friends=self.graph, urls=urls)
        recorder = RedisViewRecorder(redis, settings.redis_prefix)
        policy = UploadPolicy(settings.allowed_content_types, settings.max_upload_bytes, 900, 3600)
        # What a page reads, as in production; the rest (unused here) on fakes (tests/builders.py).
        return dataclasses.replace(
            build_services(),
            uploads=UploadService(self.repo, self.blobs, bus, policy),
            gallery=gallery,
            editing=EditingService(self.repo, bus),
            engagement=EngagementService(self.engagement, gallery, views=recorder),
            feed=FeedService(self.repo, gallery, self.engagement, InMemorySnapshotStore(), cursors),
            review=ReviewService(self.repo, bus),
            views=ViewService(recorder, self.engagement, self.repo, cursors, window_s=settings.view_window_s),
        )


# The stock and bare servers run without rate limits: a limiter that is off.
_UNLIMITED = RateLimitService(
    InMemoryRateLimiter(), RateLimitPolicy(per_user=Limit(60, 10), per_ip=Limit(60, 10), enabled=False)
)


class _Signer:
    """CloudFront-like signing cost without a key: an HMAC over the key and the expiry."""

    async def sign(self, key: str, *, expires_in: int) -> str:
        expires = int(time.time()) + expires_in
        signature = hmac.new(b"bench", f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()
        return f"https://media.invalid/{key}?Expires={expires}&Signature={signature}"


def bench_settings(redis_url: str, prefix: str) -> Settings:
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Settings(
        _env_file=None,
        profile="production",
        jwt_secret=BENCH_SECRET,
        session_signing_key=key.decode(),
        redis_url=redis_url,
        redis_prefix=prefix,
        trusted_proxies=("127.0.0.1",),  # behind the load balancer, as deployed
        graphiql=False,
    )


# --- the stock Strawberry server --------------------------------------------------------------


@strawberry.type(name="User")
class StockUser:
    id: strawberry.ID


@strawberry.type(name="MediaVariant")
class StockVariant:
    url: str | None
    width: int
    height: int


@strawberry.type(name="Media")
class StockMedia:
    id: strawberry.ID
    media_id: strawberry.ID
    status: str
    title: str
    tags: list[str]
    size: int
    created_at: datetime
    visibility: str
    owner: StockUser
    url: str | None
    like_count: int
    liked_by_me: bool
    thumbnails: list[StockVariant]


@strawberry.type(name="MediaEdge")
class StockEdge:
    cursor: str
    node: StockMedia


@strawberry.type(name="PageInfo")
class StockPageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(name="MediaConnection")
class StockConnection:
    edges: list[StockEdge]
    page_info: StockPageInfo


@dataclasses.dataclass(frozen=True, slots=True)
class Plain:
    """One media with everything its fields need, from the batched calls."""

    media: Media
    url: str | None
    thumbnails: list[tuple[Variant, str | None]]
    like_count: int
    liked_by_me: bool


THUMBS = ("thumb-small", "thumb-large")


async def batched(services: Services, viewer: Principal | None, items: list[Media]) -> list[Plain]:
    """What a plain server does: every batched call up front (URLs, stats, likes)."""
    ids = [m.id for m in items]
    wanted: list[tuple[Media, str | None]] = []
    for media in items:
        wanted += [(media, None), *((media, name) for name in THUMBS if media.variant(name))]
    urls, stats, liked = await asyncio.gather(
        services.gallery.urls(viewer, wanted),
        services.engagement.stats(ids),
        services.engagement.liked_by(viewer, ids),
    )
    found = iter(urls)
    plain = []
    for media in items:
        url = next(found)
        variants = [v for name in THUMBS if (v := media.variant(name))]
        counters = stats.get(media.id)
        plain.append(
            Plain(
                media,
                url,
                [(v, next(found)) for v in variants],
                counters.like_count if counters else 0,
                media.id in liked,
            )
        )
    return plain


def as_dict(item: Plain) -> dict[str, Any]:
    media = item.media
    return {
        "id": strawberry.relay.to_base64("Media", media.id),
        "mediaId": media.id,
        "status": media.status.value,
        "title": media.title,
        "tags": list(media.tags),
        "size": media.size,
        "createdAt": media.created_at.isoformat(),
        "visibility": media.visibility.value,
        "owner": {"id": media.owner_id},
        "url": item.url,
        "likeCount": item.like_count,
        "likedByMe": item.liked_by_me,
        "thumbnails": [{"url": url, "width": v.width, "height": v.height} for v, url in item.thumbnails],
    }


def _stock_media(item: Plain) -> StockMedia:
    media = item.media
    return StockMedia(
        id=strawberry.ID(strawberry.relay.to_base64("Media", media.id)),
        media_id=strawberry.ID(media.id),
        status=media.status.value,
        title=media.title,
        tags=list(media.tags),
        size=media.size,
        created_at=media.created_at,
        visibility=media.visibility.value,
        owner=StockUser(id=strawberry.ID(media.owner_id)),
        url=item.url,
        like_count=item.like_count,
        liked_by_me=item.liked_by_me,
        thumbnails=[StockVariant(url=url, width=v.width, height=v.height) for v, url in item.thumbnails],
    )


def stock_schema(services: Services) -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        async def media(self, info: strawberry.Info, id: strawberry.ID) -> StockMedia | None:
            viewer = info.context["viewer"]
            try:
                found = await services.gallery.get(viewer, str(id))
            except NotFound:
                return None
            if services.views is not None:
                services.views.viewed_later(viewer, found)
            return _stock_media((await batched(services, viewer, [found]))[0])

        @strawberry.field
        async def user_media(
            self, info: strawberry.Info, user_id: strawberry.ID, first: int | None = None
        ) -> StockConnection:
            viewer = info.context["viewer"]
            page = await services.gallery.list_user(viewer, str(user_id), first=first, after=None)
            items = await batched(services, viewer, page.items)
            return StockConnection(
                edges=[
                    StockEdge(cursor=cursor, node=_stock_media(item))
                    for item, cursor in zip(items, page.cursors, strict=True)
                ],
                page_info=StockPageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            )

    return strawberry.Schema(query=Query)


class StockGraphQL(GraphQL[dict[str, Any], None]):
    def encode_json(self, data: object) -> bytes:
        return encode_json(data)

    async def get_context(self, request: Any, response: Any = None) -> dict[str, Any]:
        viewer = request.headers.get("x-viewer")
        return {"viewer": Principal(user_id=viewer) if viewer else None}


# --- the bare routes --------------------------------------------------------------------------


def bare_routes(services: Services) -> list[Route]:
    def viewer_of(request: Request) -> Principal | None:
        viewer = request.headers.get("x-viewer")
        return Principal(user_id=viewer) if viewer else None

    async def media(request: Request) -> Response:
        viewer = viewer_of(request)
        try:
            found = await services.gallery.get(viewer, request.path_params["media_id"])
        except NotFound:
            return Response(encode_json({"data": {"media": None}}), media_type="application/json")
        if services.views is not None:
            services.views.viewed_later(viewer, found)
        node = as_dict((await batched(services, viewer, [found]))[0])
        return Response(encode_json({"data": {"media": node}}), media_type="application/json")

    async def gallery(request: Request) -> Response:
        viewer = viewer_of(request)
        page = await services.gallery.list_user(viewer, request.path_params["owner"], first=50, after=None)
        nodes = [as_dict(item) for item in await batched(services, viewer, page.items)]
        body = {
            "data": {
                "userMedia": {
                    "edges": [{"cursor": c, "node": n} for n, c in zip(nodes, page.cursors, strict=True)],
                    "pageInfo": {"hasNextPage": page.has_next_page, "endCursor": page.end_cursor},
                }
            }
        }
        return Response(encode_json(body), media_type="application/json")

    return [Route("/bare/media/{media_id}", media), Route("/bare/gallery/{owner}", gallery)]


def build(redis_url: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    prefix = f"bench:read:{os.getpid()}:"
    settings = bench_settings(redis_url, prefix)
    world = World.build()
    shared: dict[str, Services] = {}

    @asynccontextmanager
    async def in_process_runtime(settings: Settings) -> AsyncIterator[Runtime]:
        # No outbox relay: the in-process services publish to an in-process bus, not DynamoDB.
        async with open_runtime(settings, relay=False) as runtime:
            services = dataclasses.replace(
                world.services(settings, runtime.redis), rate_limits=runtime.rate_limits
            )
            shared["services"] = services
            try:
                yield dataclasses.replace(runtime, services=services)
            finally:
                keys = [key async for key in runtime.redis.scan_iter(match=f"{prefix}*")]
                for start in range(0, len(keys), 500):
                    await runtime.redis.delete(*keys[start : start + 500])

    ours = create_app(settings, open_runtime=in_process_runtime)
    others: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/stock" or path.startswith("/bare/")):
            if not others:  # after the lifespan opened the shared services
                services = dataclasses.replace(shared["services"], rate_limits=_UNLIMITED)
                others["stock"] = StockGraphQL(stock_schema(services))
                others["bare"] = Starlette(routes=bare_routes(services))
            await others["stock" if path == "/stock" else "bare"](scope, receive, send)
            return
        await ours(scope, receive, send)

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    # As production serves (infra/http/server.py): its HTTP protocol with the header limits and
    # read deadline, no uvicorn proxy-header rewriting; the same for all three ways.
    settings = Settings(_env_file=None, jwt_secret=BENCH_SECRET)
    config = server_config(
        build(args.redis_url),
        settings.server,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
