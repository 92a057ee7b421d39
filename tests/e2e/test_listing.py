"""Listing and search through the public API, against moto server and Redis: page boundaries,
filters, tag search visibility, ranked feeds, likes, updates and cursor abuse."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.roots.runtime import Runtime
from services.core.media import Media, MediaStatus, Visibility
from tests.client import error_codes, gql
from tests.fakes import make_media
from tests.media_files import jpeg_bytes

pytestmark = pytest.mark.e2e

MY_MEDIA = """query($first: Int, $after: String, $filter: MediaFilter) {
  myMedia(first: $first, after: $after, filter: $filter) {
    totalCount edges { cursor node { mediaId status tags } } pageInfo { hasNextPage endCursor } } }"""
BY_TAG = """query($tag: String!, $first: Int, $after: String) {
  mediaByTag(tag: $tag, first: $first, after: $after) {
    edges { node { mediaId owner { id } visibility } } pageInfo { hasNextPage endCursor } } }"""
FEED = """query($first: Int, $after: String, $ranking: FeedRanking) {
  feed(first: $first, after: $after, ranking: $ranking) {
    edges { node { mediaId likeCount likedByMe } } pageInfo { hasNextPage endCursor } } }"""
USER_MEDIA = """query($user: ID!, $after: String) {
  userMedia(userId: $user, first: 50, after: $after) {
    edges { node { mediaId } } pageInfo { hasNextPage } } }"""


async def seed(
    runtime: Runtime,
    owner: str,
    *,
    status: MediaStatus = MediaStatus.COMPLETED,
    visibility: Visibility = Visibility.PUBLIC,
    tags: tuple[str, ...] = (),
    age: timedelta = timedelta(0),
) -> Media:
    """A record as the worker leaves it, written through the production repository."""
    media = make_media(
        jpeg_bytes(100),
        owner_id=owner,
        status=status,
        visibility=visibility,
        created_at=datetime.now(UTC) - age,
    )
    media = Media.from_record({**media.to_record(), "tags": list(tags)})
    await runtime.repo.create(media)
    return media


def _flat(pages: list[list[str]]) -> list[str]:
    return [media_id for page in pages for media_id in page]


async def walk(api: str, token: str, query: str, variables: dict[str, Any], field: str) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while True:
        body = await gql(api, query, {**variables, "after": after}, token=token)
        assert "errors" not in body, body
        connection = body["data"][field]
        pages.append([edge["node"]["mediaId"] for edge in connection["edges"]])
        if not connection["pageInfo"]["hasNextPage"]:
            return pages
        after = connection["pageInfo"]["endCursor"]


async def test_filters_by_status_tag_and_time(api: str, runtime: Runtime, token: Callable[..., str]) -> None:
    old = await seed(runtime, "alice", tags=("beach",), age=timedelta(days=3))
    pending = await seed(
        runtime, "alice", status=MediaStatus.PENDING, tags=("beach",), age=timedelta(minutes=30)
    )
    new = await seed(runtime, "alice", tags=("city",))
    await seed(runtime, "bob", tags=("beach",))
    alice = token("alice")

    async def ids(filter: dict[str, Any]) -> list[str]:
        body = await gql(api, MY_MEDIA, {"filter": filter}, token=alice)
        assert "errors" not in body, body
        return [edge["node"]["mediaId"] for edge in body["data"]["myMedia"]["edges"]]

    assert await ids({}) == [new.id, pending.id, old.id]
    assert await ids({"status": "COMPLETED"}) == [new.id, old.id]
    assert await ids({"status": "PENDING"}) == [pending.id]
    assert await ids({"tag": "#Beach"}) == [pending.id, old.id]
    assert await ids({"tag": "beach", "status": "COMPLETED"}) == [old.id]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert await ids({"createdAfter": since}) == [new.id, pending.id]
    assert await ids({"createdBefore": since}) == [old.id]
    counts = await gql(api, MY_MEDIA, {"filter": {"status": "COMPLETED"}}, token=alice)
    assert counts["data"]["myMedia"]["totalCount"] == 2
    bad = await gql(api, MY_MEDIA, {"filter": {"tag": "no spaces allowed"}}, token=alice)
    assert error_codes(bad) == ["BAD_USER_INPUT"]


async def test_tag_search_never_leaks(api: str, runtime: Runtime, token: Callable[..., str]) -> None:
    public = await seed(runtime, "alice", tags=("beach",))
    private = await seed(runtime, "alice", visibility=Visibility.PRIVATE, tags=("beach",))
    friends = await seed(runtime, "alice", visibility=Visibility.FRIENDS, tags=("beach",))
    unfinished = await seed(
        runtime, "alice", status=MediaStatus.PENDING, visibility=Visibility.PUBLIC, tags=("beach",)
    )
    bobs = await seed(runtime, "bob", tags=("beach",))

    mallory = await walk(api, token("mallory"), BY_TAG, {"tag": "beach", "first": 2}, "mediaByTag")
    assert sorted(_flat(mallory)) == sorted([public.id, bobs.id])
    alice = await walk(api, token("alice"), BY_TAG, {"tag": "#BEACH", "first": 2}, "mediaByTag")
    assert sorted(_flat(alice)) == sorted([public.id, private.id, friends.id, unfinished.id, bobs.id])


async def test_user_gallery_shows_only_what_the_viewer_may_see(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    public = await seed(runtime, "alice")
    await seed(runtime, "alice", visibility=Visibility.PRIVATE)
    await seed(runtime, "alice", visibility=Visibility.FRIENDS)
    await seed(runtime, "alice", status=MediaStatus.REJECTED)
    body = await gql(api, USER_MEDIA, {"user": "alice"}, token=token("bob"))
    assert [e["node"]["mediaId"] for e in body["data"]["userMedia"]["edges"]] == [public.id]
    own = await gql(api, USER_MEDIA, {"user": "alice"}, token=token("alice"))
    assert len(own["data"]["userMedia"]["edges"]) == 4


async def test_likes_are_counted_exactly_and_rank_the_feed(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    quiet = await seed(runtime, "alice", age=timedelta(minutes=1))
    loved = await seed(runtime, "alice", age=timedelta(hours=5))
    like = "mutation($id: ID!) { likeMedia(id: $id) { likeCount likedByMe } }"
    # Ten users, each liking twice at once: ten likes.
    results = await asyncio.gather(
        *(gql(api, like, {"id": loved.id}, token=token(f"fan{i}")) for i in range(10) for _ in range(2))
    )
    assert all("errors" not in r for r in results), results
    body = await gql(api, FEED, {"ranking": "POPULAR"}, token=token("fan1"))
    nodes = [e["node"] for e in body["data"]["feed"]["edges"]]
    assert [n["mediaId"] for n in nodes] == [loved.id, quiet.id]
    assert nodes[0]["likeCount"] == 10 and nodes[0]["likedByMe"] is True
    recent = await gql(api, FEED, {"ranking": "RECENT"}, token=token("fan1"))
    assert [e["node"]["mediaId"] for e in recent["data"]["feed"]["edges"]] == [quiet.id, loved.id]
    unlike = "mutation($id: ID!) { unlikeMedia(id: $id) { likeCount likedByMe } }"
    undone = await gql(api, unlike, {"id": loved.id}, token=token("fan1"))
    assert undone["data"]["unlikeMedia"] == {"likeCount": 9, "likedByMe": False}
    # Not visible: cannot be liked, and looks absent.
    hidden = await seed(runtime, "alice", visibility=Visibility.PRIVATE)
    refused = await gql(api, like, {"id": hidden.id}, token=token("fan1"))
    assert error_codes(refused) == ["NOT_FOUND"]


async def test_ranked_feed_pages_come_from_one_snapshot(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    items = [await seed(runtime, f"user{i % 3}", age=timedelta(minutes=i)) for i in range(12)]
    viewer = token("viewer")
    pages: list[list[str]] = []
    after = None
    like = "mutation($id: ID!) { likeMedia(id: $id) { likeCount } }"
    while True:
        body = await gql(api, FEED, {"ranking": "TRENDING", "first": 5, "after": after}, token=viewer)
        connection = body["data"]["feed"]
        pages.append([e["node"]["mediaId"] for e in connection["edges"]])
        # Scores move while the walk goes on: the last item gets likes.
        await gql(api, like, {"id": items[-1].id}, token=token(f"liker{len(pages)}"))
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    walked = _flat(pages)
    assert sorted(walked) == sorted(m.id for m in items)
    assert len(walked) == len(set(walked))


async def test_a_change_shows_in_the_next_read(api: str, runtime: Runtime, token: Callable[..., str]) -> None:
    media = await seed(runtime, "alice", tags=("old",))
    alice, bob = token("alice"), token("bob")
    assert await walk(api, bob, FEED, {}, "feed") == [[media.id]]
    update = """mutation($id: ID!, $input: UpdateMediaInput!) {
      updateMedia(id: $id, input: $input) { tags visibility title } }"""
    body = await gql(api, update, {"id": media.id, "input": {"tags": ["#New"], "title": "Hi"}}, token=alice)
    assert body["data"]["updateMedia"] == {"tags": ["new"], "visibility": "PUBLIC", "title": "Hi"}
    assert await walk(api, bob, BY_TAG, {"tag": "new"}, "mediaByTag") == [[media.id]]
    assert await walk(api, bob, BY_TAG, {"tag": "old"}, "mediaByTag") == [[]]
    await gql(api, update, {"id": media.id, "input": {"visibility": "PRIVATE"}}, token=alice)
    assert await walk(api, bob, FEED, {}, "feed") == [[]]
    assert await walk(api, bob, BY_TAG, {"tag": "new"}, "mediaByTag") == [[]]
    stranger = await gql(api, update, {"id": media.id, "input": {"title": "mine now"}}, token=bob)
    assert error_codes(stranger) == ["NOT_FOUND"]


async def test_bad_cursors_and_page_sizes_are_refused(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    for _ in range(3):
        await seed(runtime, "alice")
    alice, bob = token("alice"), token("bob")
    body = await gql(api, MY_MEDIA, {"first": 1}, token=alice)
    cursor = body["data"]["myMedia"]["pageInfo"]["endCursor"]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[3] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    cases = [
        (alice, MY_MEDIA, {"first": 1, "after": tampered}),
        (bob, MY_MEDIA, {"first": 1, "after": cursor}),  # another user's cursor
        (alice, MY_MEDIA, {"first": 1, "after": cursor, "filter": {"status": "PENDING"}}),  # another query's
        (alice, FEED, {"after": cursor}),
        (alice, MY_MEDIA, {"first": 1, "after": "A" * 5000}),
        (alice, MY_MEDIA, {"first": 101}),
        (alice, MY_MEDIA, {"first": 0}),
        (alice, MY_MEDIA, {"first": -5}),
    ]
    for who, query, variables in cases:
        refused = await gql(api, query, variables, token=who)
        assert error_codes(refused) == ["BAD_USER_INPUT"], (variables, refused)


async def test_node_resolves_under_the_same_rules(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    public = await seed(runtime, "alice")
    private = await seed(runtime, "alice", visibility=Visibility.PRIVATE)
    ids = {}
    for media in (public, private):
        body = await gql(
            api, "query($id: ID!) { media(id: $id) { id } }", {"id": media.id}, token=token("alice")
        )
        ids[media.id] = body["data"]["media"]["id"]
    node = "query($id: ID!) { node(id: $id) { id ... on Media { mediaId } } }"
    seen = await gql(api, node, {"id": ids[public.id]}, token=token("bob"))
    assert seen["data"]["node"]["mediaId"] == public.id
    hidden = await gql(api, node, {"id": ids[private.id]}, token=token("bob"))
    assert hidden["data"]["node"] is None
