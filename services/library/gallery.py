"""Reading media under the visibility rules: one item, the caller's own listing, another
user's gallery, tag search; and waiting for an upload to finish."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.access import read_scope
from services.access.visibility import can_view
from services.core.auth import Principal, require
from services.core.errors import BadUserInput, NotFound
from services.core.events import MediaEvent, MediaEventType, event_position
from services.core.media import Media, MediaStatus, utcnow
from services.core.pagination import CursorCodec, page_size
from services.core.ports import (
    BlobStore,
    EventBus,
    FriendGraph,
    ListFilter,
    MediaRepository,
    NoFriends,
    Page,
    Relations,
)
from services.core.validation import normalize_tag
from services.library.archive import Availability, availability_of
from services.library.delivery import UrlMinter
from services.library.media_status import status_events

# Filtered listings read ahead in rounds; a page that needs more rounds than this comes out
# short (hasNextPage true, cursor advanced) rather than scanning a whole partition.
MAX_ROUNDS = 5


@dataclass(frozen=True, slots=True)
class MediaPage:
    items: list[Media]
    cursors: list[str]
    has_next_page: bool
    # Where the next page starts: the last item READ, which may be one not shown (an expired
    # upload, a private item), so a page whose items were all hidden can still be paged past.
    end_cursor: str | None
    total_count: int | None = None


class GalleryService:
    def __init__(
        self,
        repo: MediaRepository,
        blobs: BlobStore,
        bus: EventBus,
        cursors: CursorCodec,
        *,
        friends: FriendGraph | None = None,
        urls: UrlMinter | None = None,
        anonymous_reads: bool = True,
        url_ttl_s: int = 300,
    ) -> None:
        self._repo = repo
        self._blobs = blobs
        self._bus = bus
        self._cursors = cursors
        self._friends = friends or NoFriends()
        self._urls = urls
        self._anonymous_reads = anonymous_reads
        self._url_ttl_s = url_ttl_s

    async def get(self, viewer: Principal | None, media_id: str) -> Media:
        """The media if the viewer may see it. Raises NotFound otherwise, absent or not."""
        media = await self._repo.get(media_id)
        if media is None or not (await self.visible(viewer, [media])):
            raise NotFound("media not found")
        return media

    async def get_own(self, viewer: Principal | None, media_id: str) -> Media:
        """The caller's own media. Raises Unauthenticated, or NotFound for anyone else's."""
        principal = require(viewer)
        media = await self._repo.get(media_id)
        if media is None or media.owner_id != principal.user_id:
            raise NotFound("media not found")
        return media

    async def visible(self, viewer: Principal | None, candidates: list[Media]) -> list[Media]:
        """Those of `candidates` the viewer may see, in order; friendships and blocks are read
        in one batch."""
        now = utcnow()
        relations = Relations()
        if viewer is None:
            if not self._anonymous_reads:
                return []  # the setting: anonymous callers see nothing, PUBLIC included
        else:
            owners = {m.owner_id for m in candidates} - {viewer.user_id}
            if owners:
                relations = await read_scope.relations(self._friends, viewer.user_id, owners)
        return [
            m
            for m in candidates
            if not m.is_expired(now)
            and can_view(
                m,
                viewer,
                is_friend=m.owner_id in relations.friends,
                is_blocked=m.owner_id in relations.blocked,
            )
        ]

    async def list_mine(
        self,
        viewer: Principal | None,
        *,
        first: int | None,
        after: str | None,
        filter: ListFilter | None = None,
    ) -> MediaPage:
        """Newest first, every status but DELETED (see deletedMedia). Raises Unauthenticated,
        BadUserInput (bad first/cursor/tag)."""
        principal = require(viewer)
        wanted = _normalized(filter or ListFilter())
        scope = f"myMedia|{principal.user_id}|{wanted}"
        page = await self.read_page(
            principal,
            scope,
            first,
            after,
            lambda limit, position: self._repo.list_by_owner(
                principal.user_id, limit=limit, after=position, filter=wanted
            ),
        )
        if wanted.tag is None and wanted.created_after is None and wanted.created_before is None:
            counts = await self._repo.count_by_status(principal.user_id)
            # The trash is not part of "your media": deletedMedia lists it.
            counts.pop(MediaStatus.DELETED, None)
            total = counts.get(wanted.status, 0) if wanted.status else sum(counts.values())
            page = MediaPage(page.items, page.cursors, page.has_next_page, page.end_cursor, max(0, total))
        return page

    async def list_user(
        self, viewer: Principal | None, user_id: str, *, first: int | None, after: str | None
    ) -> MediaPage:
        """Another user's gallery: only what the viewer may see (for the owner: everything)."""
        if viewer is not None and viewer.user_id == user_id:
            return await self.list_mine(viewer, first=first, after=after)
        viewer_id = viewer.user_id if viewer else ""
        return await self.read_page(
            viewer,
            f"userMedia|{viewer_id}|{user_id}",
            first,
            after,
            lambda limit, position: self._repo.list_by_owner(
                user_id, limit=limit, after=position, filter=ListFilter(status=MediaStatus.COMPLETED)
            ),
        )

    async def by_tag(
        self, viewer: Principal | None, tag: str, *, first: int | None, after: str | None
    ) -> MediaPage:
        """Hashtag search across users: own media, PUBLIC, and FRIENDS of friends; never more."""
        normalized = normalize_tag(tag)
        viewer_id = viewer.user_id if viewer else ""
        return await self.read_page(
            viewer,
            f"mediaByTag|{viewer_id}|{normalized}",
            first,
            after,
            lambda limit, position: self._repo.list_by_tag(normalized, limit=limit, after=position),
        )

    async def read_page(
        self,
        viewer: Principal | None,
        scope: str,
        first: int | None,
        after: str | None,
        fetch: Callable[[int, str | None], Awaitable[Page]],
    ) -> MediaPage:
        """Read ahead until `limit + 1` visible items (exact hasNextPage) or MAX_ROUNDS reads."""
        limit = page_size(first)
        position = self._cursors.decode(after, scope)
        shown: list[Media] = []
        has_more = True
        for _ in range(MAX_ROUNDS):
            page = await fetch(limit + 1, position)
            shown += await self.visible(viewer, page.items)
            has_more, position = page.has_more, page.last_position
            if len(shown) > limit or not has_more:
                break
        if len(shown) > limit:
            shown = shown[:limit]
            has_more = True
            position = self._repo.position_of(shown[-1])
        cursors = [self._cursors.encode(self._repo.position_of(m), scope) for m in shown]
        end = self._cursors.encode(position, scope) if position is not None else None
        return MediaPage(shown, cursors, has_more, end)

    async def url_for(self, viewer: Principal | None, media: Media) -> str | None:
        """A short-lived URL for viewers allowed to see COMPLETED media: the sanitised variant
        (no EXIF, no location) once it exists, the original bytes only for media without one."""
        return (await self.urls(viewer, [(media, None)]))[0]

    async def variant_url(self, viewer: Principal | None, media: Media, name: str) -> str | None:
        """A short-lived URL for one derived variant, under the same rules as `url_for`."""
        return (await self.urls(viewer, [(media, name)]))[0]

    async def urls(
        self, viewer: Principal | None, wanted: list[tuple[Media, str | None]]
    ) -> list[str | None]:
        """For each (media, variant name or None for the media itself), what `url_for` or
        `variant_url` would answer; one visibility check and one URL-cache read for them all."""
        candidates = {m.id: m for m, _ in wanted if m.status is MediaStatus.COMPLETED}
        shown = {m.id for m in await self.visible(viewer, list(candidates.values()))}
        keys: list[tuple[Media, str] | None] = []
        for media, name in wanted:
            key: str | None = None
            if media.id in shown:
                if name is None:
                    display = media.variant("display")
                    key = display.key if display is not None else media.object_key
                elif (variant := media.variant(name)) is not None:
                    key = variant.key
            keys.append((media, key) if key is not None else None)
        minted = iter(await self._mint([k for k in keys if k is not None]))
        return [next(minted) if k is not None else None for k in keys]

    async def _mint(self, wanted: list[tuple[Media, str]]) -> list[str]:
        if not wanted:
            return []
        if self._urls is not None:
            return await self._urls.urls(wanted)
        return [await self._blobs.presign_get(key, expires_in=self._url_ttl_s) for _, key in wanted]

    async def availability(self, viewer: Principal | None, media: Media) -> Availability | None:
        """Whether the bytes can be read now or must be restored from an archive class first
        (one HEAD); None unless COMPLETED and visible."""
        if media.status is not MediaStatus.COMPLETED or not (await self.visible(viewer, [media])):
            return None
        return availability_of(await self._blobs.head(media.object_key))

    async def completions(self, viewer: Principal | None, media_id: str | None) -> AsyncIterator[Media]:
        """Each of the caller's uploads as it becomes COMPLETED; with `media_id`, just that one.

        The bus subscription opens before the record is read, so a worker that finishes
        between the two cannot slip past: the event is queued, or the read sees COMPLETED.
        Raises NotFound for another user's id, BadUserInput when that upload was refused.
        """
        principal = require(viewer)
        async with self._bus.subscribe(principal.user_id) as subscription:
            if media_id is not None:
                media = await self.get_own(principal, media_id)
                if media.status is MediaStatus.COMPLETED:
                    yield media
                    return
                _raise_if_refused(media)
            async for event in subscription:
                if media_id is not None and event.media.id != media_id:
                    continue
                if event.type is MediaEventType.COMPLETED:
                    yield event.media
                    if media_id is not None:
                        return
                elif media_id is not None:
                    _raise_if_refused(event.media)

    async def events(self, viewer: Principal | None, since: str | None = None) -> AsyncIterator[MediaEvent]:
        """Every change of the caller's media, from now on; with `since` (an eventId), first the
        ones after it. Raises Unauthenticated, BadUserInput (MALFORMED_SINCE, SINCE_EXPIRED)."""
        principal = require(viewer)
        if since is not None:
            event_position(since)
        async with self._bus.subscribe(principal.user_id, since) as subscription:
            async for event in subscription:
                yield event

    def status(
        self, viewer: Principal | None, media_id: str, since: str | None = None
    ) -> AsyncIterator[MediaEvent]:
        """Every state of one media the viewer may see, then the end (services/library/media_status.py).
        Raises Unauthenticated, NotFound, BadUserInput (MALFORMED_SINCE, SINCE_EXPIRED)."""
        return status_events(self._bus, self.get, viewer, media_id, since)


def _normalized(filter: ListFilter) -> ListFilter:
    if filter.created_after and filter.created_before and filter.created_after > filter.created_before:
        raise BadUserInput("createdAfter must not be later than createdBefore", field="filter")
    tag = normalize_tag(filter.tag) if filter.tag is not None else None
    return ListFilter(filter.status, tag, _utc(filter.created_after), _utc(filter.created_before))


def _utc(moment: datetime | None) -> datetime | None:
    # Positions compare as ISO strings in UTC; a naive time is taken as UTC.
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _raise_if_refused(media: Media) -> None:
    if media.status in (MediaStatus.REJECTED, MediaStatus.QUARANTINED):
        raise BadUserInput(
            f"upload {media.id} was {media.status.value.lower()}: {media.reject_reason or 'refused'}",
            mediaId=media.id,
            status=media.status.value,
        )
    if media.status is MediaStatus.DELETED:
        raise NotFound("media not found")
