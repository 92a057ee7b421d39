"""The feed (services/community/feed.py) and its rankers: only PUBLIC, COMPLETED media, never a
blocked owner's; snapshot paging with nothing repeated or missed; items hidden since the
snapshot are dropped, not shown."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from services.community.feed import FeedService
from services.community.ranking import PopularRanker, Ranking, TrendingRanker, rank
from services.core.auth import Principal
from services.core.errors import BadUserInput
from services.core.media import Media, MediaStatus, Visibility, utcnow
from services.core.pagination import CursorCodec
from services.core.ports import MediaStats
from services.library.gallery import GalleryService
from tests.fakes import (
    InMemoryBlobStore,
    InMemoryEngagementStore,
    InMemoryEventBus,
    InMemoryMediaRepository,
    InMemorySnapshotStore,
    InMemorySocialStore,
    make_media,
)

VIEWER = Principal("viewer")


@dataclasses.dataclass
class Env:
    feed: FeedService
    repo: InMemoryMediaRepository
    engagement: InMemoryEngagementStore
    snapshots: InMemorySnapshotStore
    social: InMemorySocialStore

    async def add(
        self,
        owner: str = "poster",
        *,
        minutes_ago: int = 0,
        status: MediaStatus = MediaStatus.COMPLETED,
        visibility: Visibility = Visibility.PUBLIC,
    ) -> Media:
        created = utcnow() - timedelta(minutes=minutes_ago)
        media = make_media(
            f"{owner}{minutes_ago}{len(self.repo)}".encode(),
            owner_id=owner,
            status=status,
            visibility=visibility,
            created_at=created,
        )
        await self.repo.create(media)
        return media


@pytest.fixture
def env() -> Env:
    repo, engagement, snapshots, social = (
        InMemoryMediaRepository(),
        InMemoryEngagementStore(),
        InMemorySnapshotStore(),
        InMemorySocialStore(),
    )
    cursors = CursorCodec(b"k" * 32)
    gallery = GalleryService(repo, InMemoryBlobStore(), InMemoryEventBus(), cursors, friends=social)
    return Env(
        FeedService(repo, gallery, engagement, snapshots, cursors), repo, engagement, snapshots, social
    )


async def ids(env: Env, ranking: Ranking, viewer: Principal | None = VIEWER, first: int = 10) -> list[str]:
    page = await env.feed.feed(viewer, ranking=ranking, first=first, after=None)
    return [m.id for m in page.items]


@pytest.mark.parametrize("ranking", list(Ranking))
async def test_only_public_completed_media_is_in_the_feed(env: Env, ranking: Ranking) -> None:
    shown = await env.add()
    await env.add(visibility=Visibility.FRIENDS)
    await env.add(visibility=Visibility.PRIVATE)
    for status in (MediaStatus.PENDING, MediaStatus.REJECTED, MediaStatus.QUARANTINED):
        await env.add(status=status)
    assert await ids(env, ranking) == [shown.id]
    assert await ids(env, ranking, viewer=None) == [shown.id]


@pytest.mark.parametrize("ranking", list(Ranking))
async def test_a_blocked_owners_media_is_not_in_the_feed(env: Env, ranking: Ranking) -> None:
    kept = await env.add("friendly")
    await env.add("blocker")
    await env.social.block("blocker", "viewer")
    assert await ids(env, ranking) == [kept.id]


async def test_recent_is_newest_first(env: Env) -> None:
    old, new = await env.add(minutes_ago=10), await env.add(minutes_ago=1)
    assert await ids(env, Ranking.RECENT) == [new.id, old.id]


async def test_popular_ranks_by_engagement(env: Env) -> None:
    liked, viewed, plain = await env.add(minutes_ago=3), await env.add(minutes_ago=2), await env.add()
    for user in ("a", "b"):
        await env.engagement.like(liked.id, user)
    await env.engagement.add_views({viewed.id: 2})
    assert await ids(env, Ranking.POPULAR) == [liked.id, viewed.id, plain.id]


async def test_ranked_pages_come_from_one_snapshot_even_as_scores_move(env: Env) -> None:
    made = [await env.add(minutes_ago=i) for i in range(5)]
    first = await env.feed.feed(VIEWER, ranking=Ranking.POPULAR, first=2, after=None)
    assert first.has_next_page
    for user in ("a", "b", "c"):  # the last one becomes the most popular meanwhile
        await env.engagement.like(made[-1].id, user)
    seen = [m.id for m in first.items]
    after = first.end_cursor
    while after is not None:
        page = await env.feed.feed(VIEWER, ranking=Ranking.POPULAR, first=2, after=after)
        seen += [m.id for m in page.items]
        after = page.end_cursor if page.has_next_page else None
    assert sorted(seen) == sorted(m.id for m in made) and len(seen) == len(set(seen))


async def test_media_hidden_since_the_snapshot_is_dropped_from_later_pages(env: Env) -> None:
    made = [await env.add(minutes_ago=i) for i in range(3)]
    first = await env.feed.feed(VIEWER, ranking=Ranking.TRENDING, first=1, after=None)
    hidden = made[2]
    await env.repo.save(
        hidden.edit(utcnow(), visibility=Visibility.PRIVATE), expected_version=hidden.version, previous=hidden
    )
    rest = await env.feed.feed(VIEWER, ranking=Ranking.TRENDING, first=5, after=first.end_cursor)
    assert hidden.id not in [m.id for m in rest.items]
    assert len(rest.items) == 1


async def test_an_expired_snapshot_or_a_foreign_cursor_is_refused(env: Env) -> None:
    await env.add()
    await env.add()
    first = await env.feed.feed(VIEWER, ranking=Ranking.POPULAR, first=1, after=None)
    with pytest.raises(BadUserInput):  # another ranking's cursor
        await env.feed.feed(VIEWER, ranking=Ranking.TRENDING, first=1, after=first.end_cursor)
    with pytest.raises(BadUserInput):  # another viewer's cursor
        await env.feed.feed(Principal("other"), ranking=Ranking.POPULAR, first=1, after=first.end_cursor)
    env.snapshots.snapshots.clear()  # the snapshot expired
    with pytest.raises(BadUserInput):
        await env.feed.feed(VIEWER, ranking=Ranking.POPULAR, first=1, after=first.end_cursor)


def test_trending_lets_a_fresh_item_with_a_few_likes_beat_an_old_hit() -> None:
    now = utcnow()
    old = make_media(b"old", status=MediaStatus.COMPLETED, created_at=now - timedelta(days=7))
    fresh = make_media(b"fresh", status=MediaStatus.COMPLETED, created_at=now - timedelta(hours=1))
    stats = {old.id: MediaStats(like_count=100, view_count=1000), fresh.id: MediaStats(like_count=3)}
    assert rank([old, fresh], stats, TrendingRanker(), now) == [fresh, old]
    assert rank([old, fresh], stats, PopularRanker(), now) == [old, fresh]


def test_equal_scores_keep_the_candidates_order() -> None:
    now = utcnow()
    candidates = [make_media(f"{i}".encode(), status=MediaStatus.COMPLETED, created_at=now) for i in range(4)]
    assert rank(candidates, {}, PopularRanker(), now) == candidates
