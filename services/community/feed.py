"""The feed: PUBLIC media for everyone, ranked by a replaceable Ranker.

RECENT pages straight off the public timeline index (keyset cursors). POPULAR and TRENDING
rank the newest `candidates` public items once, keep that order as a snapshot in Redis for
`snapshot_ttl_s`, and page through the snapshot: every page of one walk comes from the same
ranking, so nothing repeats or goes missing while scores move. Items deleted or made private
since the snapshot are dropped from later pages, never shown.
"""

from __future__ import annotations

from services.community.ranking import RANKERS, Ranking, rank
from services.core.auth import Principal
from services.core.errors import BadUserInput
from services.core.media import Visibility, utcnow
from services.core.pagination import CursorCodec, page_size
from services.core.ports import EngagementStore, MediaRepository, SnapshotStore
from services.library.gallery import GalleryService, MediaPage


class FeedService:
    def __init__(
        self,
        repo: MediaRepository,
        gallery: GalleryService,
        engagement: EngagementStore,
        snapshots: SnapshotStore,
        cursors: CursorCodec,
        *,
        candidates: int = 500,
        snapshot_ttl_s: int = 900,
    ) -> None:
        self._repo = repo
        self._gallery = gallery
        self._engagement = engagement
        self._snapshots = snapshots
        self._cursors = cursors
        self._candidates = candidates
        self._snapshot_ttl_s = snapshot_ttl_s

    async def feed(
        self, viewer: Principal | None, *, ranking: Ranking, first: int | None, after: str | None
    ) -> MediaPage:
        """Raises BadUserInput for a bad `first`, a forged cursor or an expired snapshot."""
        viewer_id = viewer.user_id if viewer else ""
        if ranking is Ranking.RECENT:
            return await self._gallery.read_page(
                viewer,
                f"feed|RECENT|{viewer_id}",
                first,
                after,
                lambda limit, position: self._repo.list_completed(
                    Visibility.PUBLIC, limit=limit, after=position
                ),
            )
        limit = page_size(first)
        scope = f"feed|{ranking.value}|{viewer_id}"
        position = self._cursors.decode(after, scope)
        if position is None:
            ids = await self._snapshot(ranking)
            snapshot_id, offset = await self._snapshots.save(ids, self._snapshot_ttl_s), 0
        else:
            snapshot_id, _, raw_offset = position.rpartition(":")
            loaded = await self._snapshots.load(snapshot_id)
            if loaded is None:
                raise BadUserInput("this feed ranking has expired; load the feed again", field="after")
            ids, offset = loaded, int(raw_offset)
        window = ids[offset : offset + limit]
        found = await self._repo.get_many(window)
        shown = await self._gallery.visible(viewer, [found[i] for i in window if i in found])
        next_offset = offset + len(window)
        cursors = [
            self._cursors.encode(f"{snapshot_id}:{offset + window.index(m.id) + 1}", scope) for m in shown
        ]
        return MediaPage(
            shown,
            cursors,
            next_offset < len(ids),
            self._cursors.encode(f"{snapshot_id}:{next_offset}", scope),
        )

    async def _snapshot(self, ranking: Ranking) -> list[str]:
        page = await self._repo.list_completed(Visibility.PUBLIC, limit=self._candidates, after=None)
        stats = await self._engagement.stats([m.id for m in page.items])
        return [m.id for m in rank(page.items, stats, RANKERS[ranking], utcnow())]
