"""Reading media: one item under the visibility rules, the caller's own listing, and waiting
for an upload to finish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from services.auth import Principal, require
from services.errors import BadUserInput, NotFound
from services.events import MediaEvent, MediaEventType, event_position
from services.media import Media, MediaStatus, utcnow
from services.pagination import CursorCodec, page_size
from services.ports import BlobStore, EventBus, MediaRepository
from services.visibility import can_view


@dataclass(frozen=True, slots=True)
class MediaPage:
    items: list[Media]
    cursors: list[str]
    has_next_page: bool
    # Where the next page starts: the last item READ, which may be one not shown (an expired
    # upload), so a page whose items were all hidden can still be paged past.
    end_cursor: str | None


class GalleryService:
    def __init__(
        self,
        repo: MediaRepository,
        blobs: BlobStore,
        bus: EventBus,
        cursors: CursorCodec,
        *,
        url_ttl_s: int = 300,
    ) -> None:
        self._repo = repo
        self._blobs = blobs
        self._bus = bus
        self._cursors = cursors
        self._url_ttl_s = url_ttl_s

    async def get(self, viewer: Principal | None, media_id: str) -> Media:
        """The media if the viewer may see it. Raises NotFound otherwise, absent or not."""
        media = await self._repo.get(media_id)
        if media is None or media.is_expired(utcnow()) or not can_view(media, viewer):
            raise NotFound("media not found")
        return media

    async def get_own(self, viewer: Principal | None, media_id: str) -> Media:
        """The caller's own media. Raises Unauthenticated, or NotFound for anyone else's."""
        principal = require(viewer)
        media = await self._repo.get(media_id)
        if media is None or media.owner_id != principal.user_id:
            raise NotFound("media not found")
        return media

    async def list_mine(
        self,
        viewer: Principal | None,
        *,
        first: int | None,
        after: str | None,
        status: MediaStatus | None = None,
    ) -> MediaPage:
        """Newest first, every status. Raises Unauthenticated, BadUserInput (bad first/cursor)."""
        principal = require(viewer)
        limit = page_size(first)
        scope = f"myMedia|{principal.user_id}|{status or ''}"
        position = self._cursors.decode(after, scope)
        page = await self._repo.list_by_owner(principal.user_id, limit=limit, after=position, status=status)
        now = utcnow()
        items = [media for media in page.items if not media.is_expired(now)]
        cursors = [self._cursors.encode(self._repo.position_of(media), scope) for media in items]
        end = self._cursors.encode(self._repo.position_of(page.items[-1]), scope) if page.items else None
        return MediaPage(items=items, cursors=cursors, has_next_page=page.has_more, end_cursor=end)

    async def url_for(self, viewer: Principal | None, media: Media) -> str | None:
        """A short-lived URL for the bytes, for viewers allowed to see COMPLETED media."""
        if media.status is not MediaStatus.COMPLETED or not can_view(media, viewer):
            return None
        return await self._blobs.presign_get(media.object_key, expires_in=self._url_ttl_s)

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


def _raise_if_refused(media: Media) -> None:
    if media.status in (MediaStatus.REJECTED, MediaStatus.QUARANTINED):
        raise BadUserInput(
            f"upload {media.id} was {media.status.value.lower()}: {media.reject_reason or 'refused'}",
            mediaId=media.id,
            status=media.status.value,
        )
    if media.status is MediaStatus.DELETED:
        raise NotFound("media not found")
