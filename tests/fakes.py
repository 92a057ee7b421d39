"""In-memory implementations of the ports in `services/ports.py`, for unit tests of the services
and for benchmarks that need an in-process repository. Never used against real infrastructure."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ulid import ULID

from services.errors import Conflict
from services.events import MediaEvent, event_position
from services.media import Media, MediaStatus, Visibility, utcnow
from services.ports import BlobInfo, BlobStream, Page, PresignedRequest

if TYPE_CHECKING:
    from services.ports import BlobStore, EventBus, MediaRepository


class InMemoryMediaRepository:
    """Same contract as DynamoMediaRepository: versioned writes, newest-first listings."""

    def __init__(self) -> None:
        self._items: dict[str, Media] = {}

    def __len__(self) -> int:
        return len(self._items)

    def all(self) -> list[Media]:
        return list(self._items.values())

    async def create(self, media: Media) -> None:
        if media.id in self._items:
            raise Conflict(f"media {media.id} already exists")
        self._items[media.id] = media

    async def get(self, media_id: str) -> Media | None:
        return self._items.get(media_id)

    async def save(self, media: Media, *, expected_version: int) -> None:
        current = self._items.get(media.id)
        if current is None or current.version != expected_version:
            raise Conflict(f"media {media.id} changed meanwhile")
        self._items[media.id] = media

    async def list_by_owner(
        self, owner_id: str, *, limit: int, after: str | None, status: MediaStatus | None = None
    ) -> Page:
        matching = [
            media
            for media in self._items.values()
            if media.owner_id == owner_id and (status is None or media.status is status)
        ]
        matching.sort(key=self.position_of, reverse=True)
        if after is not None:
            matching = [media for media in matching if self.position_of(media) < after]
        return Page(items=matching[:limit], has_more=len(matching) > limit)

    async def oldest_with_status(self, status: MediaStatus, *, limit: int) -> list[Media]:
        matching = sorted(
            (media for media in self._items.values() if media.status is status), key=self.position_of
        )
        return matching[:limit]

    async def delete(self, media: Media) -> None:
        current = self._items.get(media.id)
        if current is None or current.version != media.version:
            raise Conflict(f"media {media.id} changed meanwhile")
        del self._items[media.id]

    def position_of(self, media: Media) -> str:
        return f"{media.created_at.isoformat()}#{media.id}"

    async def ping(self) -> None:
        return None


@dataclasses.dataclass
class _Blob:
    data: bytes
    content_type: str | None


class InMemoryBlobStore:
    """Objects in a dict. `put` stands in for the client's PUT to the presigned URL."""

    def __init__(self, *, chunk_size: int = 1024) -> None:
        self._objects: dict[str, _Blob] = {}
        self._chunk_size = chunk_size
        self.presigned: list[PresignedRequest] = []
        self.opened = 0
        self.closed = 0

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._objects[key] = _Blob(data, content_type)

    def stored_keys(self) -> set[str]:
        return set(self._objects)

    async def presign_put(
        self, key: str, *, content_type: str, size: int, sha256_b64: str, expires_in: int
    ) -> PresignedRequest:
        request = PresignedRequest(
            url=f"https://blobs.invalid/{key}?X-Amz-Expires={expires_in}&X-Amz-Signature=fake",
            method="PUT",
            headers={
                "Content-Type": content_type,
                "Content-Length": str(size),
                "x-amz-checksum-sha256": sha256_b64,
                "If-None-Match": "*",
            },
            expires_in=expires_in,
        )
        self.presigned.append(request)
        return request

    async def presign_get(self, key: str, *, expires_in: int) -> str:
        return f"https://blobs.invalid/{key}?X-Amz-Expires={expires_in}&X-Amz-Signature=fake"

    async def delete(self, key: str) -> None:
        self._objects.pop(key, None)

    async def head(self, key: str) -> BlobInfo | None:
        blob = self._objects.get(key)
        if blob is None:
            return None
        etag = '"' + hashlib.md5(blob.data, usedforsecurity=False).hexdigest() + '"'
        return BlobInfo(size=len(blob.data), content_type=blob.content_type, etag=etag)

    async def open(self, key: str) -> BlobStream | None:
        info = await self.head(key)
        if info is None:
            return None
        data = self._objects[key].data
        self.opened += 1

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), self._chunk_size):
                # Yield to the loop between chunks, as a network read would: concurrent
                # handlers then really interleave.
                await asyncio.sleep(0)
                yield data[start : start + self._chunk_size]

        async def close() -> None:
            self.closed += 1

        return BlobStream(info=info, chunks=chunks(), close=close)

    async def ping(self) -> None:
        return None


class InMemorySubscription:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.queue: asyncio.Queue[MediaEvent] = asyncio.Queue()

    async def __aiter__(self) -> AsyncIterator[MediaEvent]:
        while True:
            yield await self.queue.get()


class InMemoryEventBus:
    """Publishes each `dedupe_key` once, with increasing ids, to that owner's subscribers.

    Set `fail_next_publish` to an exception to make the next publish raise it without
    publishing anything: a worker that dies between its write and its publish."""

    def __init__(self) -> None:
        self.published: list[MediaEvent] = []
        self.fail_next_publish: BaseException | None = None
        self._seen: set[str] = set()
        self._sequence = 0
        self._subscribers: dict[str, set[InMemorySubscription]] = {}

    async def publish(self, event: MediaEvent) -> str | None:
        if self.fail_next_publish is not None:
            error, self.fail_next_publish = self.fail_next_publish, None
            raise error
        if event.dedupe_key in self._seen:
            return None
        self._seen.add(event.dedupe_key)
        self._sequence += 1
        event = dataclasses.replace(event, event_id=f"{self._sequence}-0")
        self.published.append(event)
        for subscription in self._subscribers.get(event.owner_id, ()):
            subscription.queue.put_nowait(event)
        return event.event_id

    @contextlib.asynccontextmanager
    async def subscribe(self, user_id: str, since: str | None = None) -> AsyncIterator[InMemorySubscription]:
        subscription = InMemorySubscription(user_id)
        if since is not None:
            start = event_position(since)
            for event in self.published:
                if event.owner_id == user_id and event_position(event.event_id) > start:
                    subscription.queue.put_nowait(event)
        self._subscribers.setdefault(user_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers[user_id]
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[user_id]

    def subscriber_count(self, user_id: str) -> int:
        return len(self._subscribers.get(user_id, ()))

    async def ping(self) -> None:
        return None


def make_media(
    data: bytes,
    *,
    owner_id: str = "user-1",
    content_type: str = "image/jpeg",
    status: MediaStatus = MediaStatus.PENDING,
    visibility: Visibility = Visibility.PRIVATE,
    created_at: datetime | None = None,
    expires_at: datetime | None = None,
    upload_prefix: str = "uploads/",
    media_id: str | None = None,
) -> Media:
    """A record as createUpload would store it for `data` (PENDING ones expire in an hour)."""
    created = created_at or utcnow()
    media_id = media_id or str(ULID())
    if expires_at is None and status is MediaStatus.PENDING:
        expires_at = created + timedelta(hours=1)
    return Media(
        id=media_id,
        owner_id=owner_id,
        status=status,
        filename="photo.jpg",
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        title="",
        tags=(),
        visibility=visibility,
        object_key=f"{upload_prefix}{media_id}",
        created_at=created,
        updated_at=created,
        expires_at=expires_at,
        completed_at=created if status is MediaStatus.COMPLETED else None,
    )


if TYPE_CHECKING:
    # The fakes must keep up with the ports: mypy fails here when a port grows a method.
    _repository: MediaRepository = InMemoryMediaRepository()
    _blobs: BlobStore = InMemoryBlobStore()
    _bus: EventBus = InMemoryEventBus()
