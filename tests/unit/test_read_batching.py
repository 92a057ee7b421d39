"""No N+1 on listings: whatever fields a page selects, each kind of read happens once per request
(the listing, the friend graph, stats, likes, the URL cache), counted on the ports themselves."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schema.root import build_schema
from schema.types.context import Context
from services.access.read_scope import read_scope
from services.community.engagement import EngagementService
from services.community.feed import FeedService
from services.community.social import SocialService
from services.core.auth import Principal
from services.core.errors import NotFound
from services.core.media import Media, MediaStatus, Variant, Visibility
from services.core.pagination import CursorCodec
from services.core.ports import CachedUrl, Relations
from services.ingest.uploads import UploadPolicy, UploadService
from services.library.delivery import UrlMinter
from services.library.editing import EditingService
from services.library.gallery import GalleryService
from services.library.review import ReviewService
from tests.builders import build_services
from tests.fakes import (
    InMemoryBlobStore,
    InMemoryEngagementStore,
    InMemoryEventBus,
    InMemoryMediaRepository,
    InMemorySnapshotStore,
    make_media,
)

BOB = Principal(user_id="bob")
BASE = datetime(2026, 1, 1, tzinfo=UTC)
PAGE = """query($first: Int) { mediaByTag(tag: "sun", first: $first) { edges { node {
  mediaId url thumbnails { url } likeCount likedByMe viewCount owner { id }
} } } }"""


class Counted:
    """Forwards to `inner`, counting the calls of each method."""

    def __init__(self, inner: object, calls: Counter[str], name: str) -> None:
        self._inner, self._calls, self._name = inner, calls, name

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._inner, attr)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls[f"{self._name}.{attr}"] += 1
            return target(*args, **kwargs)

        return call


class Graph:
    def __init__(self) -> None:
        self.friends: set[tuple[str, str]] = set()
        self.blocked: set[tuple[str, str]] = set()

    async def relations(self, user_id: str, others: set[str]) -> Relations:
        return Relations(
            friends=frozenset(o for o in others if (user_id, o) in self.friends),
            blocked=frozenset(o for o in others if (user_id, o) in self.blocked),
        )


class DictUrlCache:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], CachedUrl] = {}

    async def get_many(self, entries: list[tuple[str, str]]) -> list[CachedUrl | None]:
        return [self.entries.get(entry) for entry in entries]

    async def put_many(self, entries: list[tuple[str, str, CachedUrl]]) -> None:
        for owner_id, key, url in entries:
            self.entries[(owner_id, key)] = url

    async def forget_owner(self, owner_id: str) -> None:
        self.entries = {k: v for k, v in self.entries.items() if k[0] != owner_id}


class Signer:
    async def sign(self, key: str, *, expires_in: int) -> str:
        return f"https://cdn.invalid/{key}"


def with_thumbnails(media: Media) -> Media:
    return dataclasses.replace(
        media,
        tags=("sun",),
        variants=tuple(
            Variant(name, f"derived/{media.id}/{name}.webp", size, size)
            for name, size in (("display", 1600), ("thumb-small", 160), ("thumb-large", 640))
        ),
    )


async def world() -> tuple[Context, Counter[str], Graph, InMemoryMediaRepository]:
    calls: Counter[str] = Counter()
    repo, blobs, bus = InMemoryMediaRepository(), InMemoryBlobStore(), InMemoryEventBus()
    graph = Graph()
    graph.friends.add(("bob", "alice"))
    # The newest 21 visible to bob (a page of 20 and the one telling there is more): alice's
    # PUBLIC and FRIENDS media (a friend), carol's PUBLIC; then carol's FRIENDS (not a friend).
    for i in range(24):
        owner = "alice" if i % 2 else "carol"
        visibility = Visibility.FRIENDS if (owner == "alice" and i % 3 == 0) or i >= 21 else Visibility.PUBLIC
        media = make_media(
            b"x",
            owner_id=owner,
            status=MediaStatus.COMPLETED,
            visibility=visibility,
            created_at=BASE - timedelta(minutes=i),
            media_id=f"M{i:03d}",
        )
        await repo.create(with_thumbnails(media))
    engagement = InMemoryEngagementStore()
    await engagement.like("M001", "bob")
    counted_repo: Any = Counted(repo, calls, "media")
    cursors = CursorCodec(b"k" * 32)
    gallery = GalleryService(
        counted_repo,
        blobs,
        bus,
        cursors,
        friends=Counted(graph, calls, "friends"),
        urls=UrlMinter(Signer(), Counted(DictUrlCache(), calls, "urls"), ttl_s=300),
    )
    store: Any = Counted(engagement, calls, "engagement")
    # The services a page reads through, counted; the rest as every test has them (tests/builders.py).
    services = dataclasses.replace(
        build_services(),
        uploads=UploadService(counted_repo, blobs, bus, UploadPolicy(("image/jpeg",), 1 << 20, 900, 3600)),
        gallery=gallery,
        editing=EditingService(counted_repo, bus),
        engagement=EngagementService(store, gallery),
        feed=FeedService(counted_repo, gallery, store, InMemorySnapshotStore(), cursors),
        review=ReviewService(counted_repo, bus),
    )
    return Context(services=services, request_id="t", principal=BOB), calls, graph, repo


async def run(context: Context, query: str = PAGE, **variables: object) -> dict[str, Any]:
    """One HTTP request: a fresh context, in a read scope (as MediagraphGraphQL runs each)."""
    fresh = Context(services=context.services, request_id="t", principal=context.principal)
    with read_scope():
        result = await build_schema().execute(query, variable_values=variables, context_value=fresh)
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


async def test_a_page_with_urls_thumbnails_and_counters_reads_each_kind_once() -> None:
    context, calls, _, _ = await world()
    data = await run(context, first=20)
    nodes = [edge["node"] for edge in data["mediaByTag"]["edges"]]
    assert len(nodes) == 20
    assert all(
        n["url"] and len(n["thumbnails"]) == 2 and all(t["url"] for t in n["thumbnails"]) for n in nodes
    )
    assert [n["likedByMe"] for n in nodes if n["mediaId"] == "M001"] == [True]
    assert calls == {
        "media.list_by_tag": 1,
        "media.position_of": calls["media.position_of"],  # pure: no read
        "friends.relations": 1,
        "engagement.stats": 1,
        "engagement.liked": 1,
        "urls.get_many": 1,
        "urls.put_many": 1,
    }

    calls.clear()
    await run(context, first=20)
    assert calls["urls.get_many"] == 1 and calls["urls.put_many"] == 0  # all 60 URLs cached


async def test_media_by_id_checks_visibility_once_for_all_its_urls() -> None:
    context, calls, _, _ = await world()
    query = 'query { media(id: "M001") { url thumbnails { url } poster { url } availability } }'
    data = await run(context, query)
    assert data["media"]["url"] and data["media"]["availability"] == "MISSING"  # no bytes in the fake store
    assert calls["friends.relations"] == 1 and calls["urls.get_many"] == 1


async def test_each_query_sees_the_friend_graph_as_it_is_now() -> None:
    context, calls, graph, _ = await world()
    query = 'query { media(id: "M003") { url } }'  # alice's FRIENDS media
    assert (await run(context, 'query { media(id: "M022") { url } }'))["media"] is None  # carol's
    assert (await run(context, query))["media"]["url"]
    graph.friends.clear()
    assert (await run(context, query))["media"] is None
    assert calls["friends.relations"] == 3


async def test_a_block_within_a_request_is_seen_by_the_next_field() -> None:
    """A mutation document may block a user in one field and read in the next: social writes
    drop the request's memo (services/community/social.py)."""
    context, calls, graph, _ = await world()
    store = BlockingStore(graph)
    social = SocialService(store, CursorCodec(b"k" * 32))  # type: ignore[arg-type]  # the methods used
    gallery = context.services.gallery
    with read_scope():
        assert (await gallery.get(BOB, "M003")).id == "M003"  # alice's FRIENDS media, bob a friend
        await social.block(BOB, "alice")
        with pytest.raises(NotFound):
            await gallery.get(BOB, "M003")
    assert calls["friends.relations"] == 2


class BlockingStore:
    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def user_exists(self, user_id: str) -> bool:
        return True

    async def block(self, user_id: str, other: str) -> None:
        self._graph.friends -= {(user_id, other), (other, user_id)}
        self._graph.blocked |= {(user_id, other), (other, user_id)}


async def test_only_what_the_document_selects_is_read() -> None:
    context, calls, _, _ = await world()
    await run(context, 'query { mediaByTag(tag: "sun", first: 20) { edges { node { mediaId } } } }')
    assert calls.keys() <= {"media.list_by_tag", "media.position_of", "friends.relations"}
    calls.clear()
    fragment = "fragment F on Media { likeCount }"
    await run(context, 'query { mediaByTag(tag: "sun") { edges { node { ...F } } } } ' + fragment)
    assert calls["engagement.stats"] == 1 and calls["engagement.liked"] == 0 and calls["urls.get_many"] == 0


async def test_a_media_from_a_mutation_reads_through_the_loaders() -> None:
    context, calls, _, _ = await world()
    mutation = 'mutation { likeMedia(id: "M003") { likeCount likedByMe url thumbnails { url } } }'
    with read_scope():
        result = await build_schema().execute(mutation, context_value=context)
    assert result.errors is None, result.errors
    assert result.data == {
        "likeMedia": {
            "likeCount": 1,
            "likedByMe": True,
            "url": "https://cdn.invalid/derived/M003/display.webp",
            "thumbnails": [
                {"url": "https://cdn.invalid/derived/M003/thumb-small.webp"},
                {"url": "https://cdn.invalid/derived/M003/thumb-large.webp"},
            ],
        }
    }
    assert calls["urls.get_many"] == 1 and calls["engagement.stats"] == 1 and calls["engagement.liked"] == 1
