"""Feed ranking: one replaceable piece. A ranker scores a candidate; higher comes first.

RECENT    newest first (no scoring: served straight from the public timeline index)
POPULAR   2·ln(1 + likes) + ln(1 + views)                    all-time engagement
TRENDING  (2·likes + 0.5·views + 1) / (age_hours + 2) ^ 1.5  engagement with time decay
          (the Hacker News gravity form: a new item with a few likes beats an old hit)
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from services.core.media import Media
from services.core.ports import MediaStats


class Ranking(StrEnum):
    RECENT = "RECENT"
    POPULAR = "POPULAR"
    TRENDING = "TRENDING"


class Ranker(Protocol):
    def score(self, media: Media, stats: MediaStats, now: datetime) -> float: ...


class PopularRanker:
    def score(self, media: Media, stats: MediaStats, now: datetime) -> float:
        return 2 * math.log1p(stats.like_count) + math.log1p(stats.view_count)


class TrendingRanker:
    gravity = 1.5

    def score(self, media: Media, stats: MediaStats, now: datetime) -> float:
        age_hours = max(0.0, (now - (media.completed_at or media.created_at)).total_seconds() / 3600)
        engagement = 2 * stats.like_count + 0.5 * stats.view_count + 1
        return float(engagement / (age_hours + 2) ** self.gravity)


RANKERS: dict[Ranking, Ranker] = {Ranking.POPULAR: PopularRanker(), Ranking.TRENDING: TrendingRanker()}


def rank(candidates: list[Media], stats: dict[str, MediaStats], ranker: Ranker, now: datetime) -> list[Media]:
    """Stable: equal scores keep the candidates' (newest-first) order."""
    return sorted(candidates, key=lambda m: -ranker.score(m, stats.get(m.id, MediaStats()), now))
