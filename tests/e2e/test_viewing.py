"""Viewing through the public API: the visibility matrix on every path, friends and blocks,
URL delivery and caching, and the view audit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from infra.observability.metrics import sample
from infra.roots.runtime import Runtime
from infra.settings import Settings
from services.core.media import Media, MediaStatus, Visibility
from tests.client import WsClient, error_codes, gql
from tests.e2e.test_listing import seed

pytestmark = pytest.mark.e2e

MEDIA = "query($id: ID!) { media(id: $id) { mediaId url viewCount } }"
BY_TAG = 'query { mediaByTag(tag: "matrix", first: 50) { edges { node { mediaId } } } }'
FEED = "query { feed(first: 50) { edges { node { mediaId } } } }"
MINE = "query { myMedia(first: 50) { edges { node { mediaId } } } }"
GALLERY = 'query { userMedia(userId: "alice", first: 50) { edges { node { mediaId } } } }'
REQUEST = "mutation($u: ID!) { requestFriend(userId: $u) { status user { id } } }"
ACCEPT = "mutation($u: ID!) { acceptFriend(userId: $u) { status } }"


def _ids(body: dict[str, object], field: str) -> set[str]:
    data = body["data"]
    assert isinstance(data, dict), body
    return {edge["node"]["mediaId"] for edge in data[field]["edges"]}


async def _social_setup(api: str, token: Callable[..., str]) -> None:
    for user in ("alice", "bob", "carol", "dave"):
        await gql(api, "{ friends { edges { cursor } } }", token=token(user))  # they now exist
    assert (await gql(api, REQUEST, {"u": "alice"}, token=token("bob")))["data"]["requestFriend"][
        "status"
    ] == "REQUESTED"
    assert (await gql(api, ACCEPT, {"u": "bob"}, token=token("alice")))["data"]["acceptFriend"][
        "status"
    ] == "FRIENDS"
    assert (await gql(api, REQUEST, {"u": "alice"}, token=token("carol")))["data"]["requestFriend"][
        "status"
    ] == "REQUESTED"


@pytest.mark.parametrize(
    ("viewer", "sees"),
    [
        ("alice", {Visibility.PUBLIC, Visibility.PRIVATE, Visibility.FRIENDS}),  # owner
        ("bob", {Visibility.PUBLIC, Visibility.FRIENDS}),  # accepted friend
        ("carol", {Visibility.PUBLIC}),  # pending request
        ("dave", {Visibility.PUBLIC}),  # stranger
        (None, {Visibility.PUBLIC}),  # anonymous (MEDIAGRAPH_ANONYMOUS_PUBLIC_READS on)
    ],
)
async def test_visibility_matrix(
    api: str, runtime: Runtime, token: Callable[..., str], viewer: str | None, sees: set[Visibility]
) -> None:
    await _social_setup(api, token)
    media = {v: await seed(runtime, "alice", visibility=v, tags=("matrix",)) for v in Visibility}
    pending = await seed(
        runtime, "alice", status=MediaStatus.PENDING, visibility=Visibility.PUBLIC, tags=("matrix",)
    )
    expected = {media[v].id for v in sees}
    if viewer == "alice":
        expected.add(pending.id)
    who = token(viewer) if viewer else None

    for item in [*media.values(), pending]:
        body = await gql(api, MEDIA, {"id": item.id}, token=who)
        found = body["data"]["media"]
        assert (found is not None) == (item.id in expected), (viewer, item.visibility, item.status)
        if found is not None and item.status is MediaStatus.COMPLETED:
            assert found["url"], "a visible COMPLETED media has a URL"
    assert _ids(await gql(api, BY_TAG, token=who), "mediaByTag") == expected
    assert _ids(await gql(api, GALLERY, token=who), "userMedia") == expected
    assert _ids(await gql(api, FEED, token=who), "feed") == {media[Visibility.PUBLIC].id}
    mine = await gql(api, MINE, token=who)
    if viewer is None:
        assert error_codes(mine) == ["UNAUTHENTICATED"]
    else:
        assert _ids(mine, "myMedia") == (expected if viewer == "alice" else set())

    if viewer is not None and viewer != "alice":
        # Subscriptions: nothing of alice's ever reaches another user.
        async with WsClient(api, who) as ws:
            op = await ws.subscribe("subscription { mediaEvents { media { mediaId } } }")
            probe = await ws.subscribe(
                "subscription($id: ID) { uploadCompleted(mediaId: $id) { mediaId } }",
                {"id": media[Visibility.PUBLIC].id},
            )
            answer = await ws.receive()
            assert answer["id"] == probe and error_codes(answer["payload"]) == ["NOT_FOUND"]
            assert await ws.receive() == {"id": probe, "type": "complete"}
            update = 'mutation($id: ID!) { updateMedia(id: $id, input: {title: "new"}) { title } }'
            await gql(api, update, {"id": media[Visibility.FRIENDS].id}, token=token("alice"))
            await ws.expect_nothing(0.5)
            assert op != probe


async def test_a_block_hides_everything_both_ways(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    await _social_setup(api, token)
    alices = await seed(runtime, "alice", visibility=Visibility.PUBLIC, tags=("matrix",))
    bobs = await seed(runtime, "bob", visibility=Visibility.PUBLIC, tags=("matrix",))
    block = "mutation($u: ID!) { blockUser(userId: $u) }"
    assert (await gql(api, block, {"u": "alice"}, token=token("bob")))["data"]["blockUser"] is True

    assert (await gql(api, MEDIA, {"id": alices.id}, token=token("bob")))["data"]["media"] is None
    assert (await gql(api, MEDIA, {"id": bobs.id}, token=token("alice")))["data"]["media"] is None
    assert _ids(await gql(api, BY_TAG, token=token("bob")), "mediaByTag") == {bobs.id}
    assert _ids(await gql(api, BY_TAG, token=token("alice")), "mediaByTag") == {alices.id}
    friends = await gql(api, "{ friends { edges { node { id } } } }", token=token("alice"))
    assert friends["data"]["friends"]["edges"] == []
    again = await gql(api, REQUEST, {"u": "bob"}, token=token("alice"))
    assert error_codes(again) == ["NOT_FOUND"]  # a block looks like absence
    # Others still see both.
    assert _ids(await gql(api, BY_TAG, token=token("dave")), "mediaByTag") == {alices.id, bobs.id}


async def test_friend_requests_flow_and_unknown_users(api: str, token: Callable[..., str]) -> None:
    for user in ("alice", "bob"):
        await gql(api, "{ friends { edges { cursor } } }", token=token(user))
    unknown = await gql(api, REQUEST, {"u": "nobody"}, token=token("alice"))
    assert error_codes(unknown) == ["NOT_FOUND"]
    self_request = await gql(api, REQUEST, {"u": "alice"}, token=token("alice"))
    assert error_codes(self_request) == ["BAD_USER_INPUT"]
    await gql(api, REQUEST, {"u": "bob"}, token=token("alice"))
    incoming = await gql(api, "{ friendRequests { edges { node { id } } } }", token=token("bob"))
    assert [e["node"]["id"] for e in incoming["data"]["friendRequests"]["edges"]] == ["alice"]
    no_request = await gql(api, ACCEPT, {"u": "bob"}, token=token("alice"))  # alice asked; bob must accept
    assert error_codes(no_request) == ["NOT_FOUND"]
    # Bob asking back accepts at once.
    crossed = await gql(api, REQUEST, {"u": "alice"}, token=token("bob"))
    assert crossed["data"]["requestFriend"]["status"] == "FRIENDS"
    listed = await gql(api, "{ friends { edges { node { id } } } }", token=token("alice"))
    assert [e["node"]["id"] for e in listed["data"]["friends"]["edges"]] == ["bob"]
    removed = await gql(api, 'mutation { removeFriend(userId: "bob") }', token=token("alice"))
    assert removed["data"]["removeFriend"] is True
    assert (await gql(api, "{ friends { edges { cursor } } }", token=token("bob")))["data"]["friends"][
        "edges"
    ] == []


async def test_presigned_get_fetches_the_bytes_and_carries_the_expiry(
    api: str, runtime: Runtime, settings: Settings, token: Callable[..., str]
) -> None:
    media = await seed(runtime, "alice", visibility=Visibility.PUBLIC)
    await runtime.clients.s3.put_object(Bucket=settings.bucket, Key=media.object_key, Body=b"the bytes")
    body = await gql(api, MEDIA, {"id": media.id}, token=token("bob"))
    url = body["data"]["media"]["url"]
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == [str(settings.url_ttl_s)]  # moto does not enforce it: check it
    async with httpx.AsyncClient() as client:
        fetched = await client.get(url)
    assert fetched.status_code == 200 and fetched.content == b"the bytes"


def _url_hits() -> float:
    return sample("mediagraph_cache_requests_total", {"cache": "url", "result": "hit"})


async def test_cached_urls_are_reused_then_dropped(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    await _social_setup(api, token)
    media = await seed(runtime, "alice", visibility=Visibility.FRIENDS)
    bob = token("bob")

    async def url_for(who: str) -> str | None:
        found = (await gql(api, MEDIA, {"id": media.id}, token=who))["data"]["media"]
        return found["url"] if found else None

    first = await url_for(bob)
    hits = _url_hits()
    assert await url_for(bob) == first and _url_hits() == hits + 1  # reused from Redis

    async def dropped_after(action: Callable[[], object]) -> None:
        await action()  # type: ignore[misc]
        before = _url_hits()
        await url_for(token("alice"))
        assert _url_hits() == before, "a change that narrows visibility drops the cached URL"

    # Visibility change (bumps the record's version) ...
    update = """mutation($id: ID!, $v: Visibility!) {
      updateMedia(id: $id, input: {visibility: $v}) { mediaId } }"""
    await dropped_after(lambda: gql(api, update, {"id": media.id, "v": "PUBLIC"}, token=token("alice")))
    await url_for(bob)
    # ... unfriend ...
    await dropped_after(lambda: gql(api, 'mutation { removeFriend(userId: "alice") }', token=bob))
    await url_for(bob)
    # ... block ...
    await dropped_after(lambda: gql(api, 'mutation { blockUser(userId: "carol") }', token=token("alice")))
    assert await url_for(token("carol")) is None
    # ... and delete: the media itself is gone for everyone.
    await gql(
        api, "mutation($id: ID!) { deleteMedia(id: $id) { mediaId } }", {"id": media.id}, token=token("alice")
    )
    assert await url_for(bob) is None


async def test_view_counts_are_exact_and_deduplicated(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    media: Media = await seed(runtime, "alice", visibility=Visibility.PUBLIC)
    viewers = [f"viewer{i}" for i in range(10)]
    # Ten viewers, each three times at once: ten views (the same viewer within the window counts once).
    await asyncio.gather(
        *(gql(api, MEDIA, {"id": media.id}, token=token(v)) for v in viewers for _ in range(3))
    )
    await gql(api, MEDIA, {"id": media.id}, token=token("alice"))  # the owner's own look is not a view

    count = 0
    for _ in range(100):  # counting happens beside the read: wait for it to land
        body = await gql(
            api, "query($id: ID!) { media(id: $id) { viewCount } }", {"id": media.id}, token=token("alice")
        )
        count = body["data"]["media"]["viewCount"]
        if count >= 10:
            break
        await asyncio.sleep(0.05)
    assert count == 10
    assert runtime.services.views is not None
    # Moved to DynamoDB (by this call, or by the periodic flush if it ran first): the count stays the same.
    await runtime.services.views.flush()
    after = await gql(
        api, "query($id: ID!) { media(id: $id) { viewCount } }", {"id": media.id}, token=token("alice")
    )
    assert after["data"]["media"]["viewCount"] == 10

    log = "query($id: ID!) { mediaViews(id: $id, first: 50) { edges { node { viewer { id } viewedAt } } } }"
    listed = await gql(api, log, {"id": media.id}, token=token("alice"))
    assert sorted(e["node"]["viewer"]["id"] for e in listed["data"]["mediaViews"]["edges"]) == sorted(viewers)
    foreign = await gql(api, log, {"id": media.id}, token=token("viewer1"))
    assert error_codes(foreign) == ["NOT_FOUND"]
