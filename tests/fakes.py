"""In-memory implementations of the ports in `services/core/ports.py`, for unit tests of the services
and for benchmarks that need an in-process repository. Never used against real infrastructure."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ulid import ULID

from services.core.errors import Conflict, NotFound
from services.core.events import MediaEvent, event_position
from services.core.media import Media, MediaStatus, Visibility, utcnow
from services.core.ports import (
    HELD_STATUSES,
    AuditEntry,
    AuditPage,
    BlobInfo,
    BlobStream,
    Bucket,
    FriendshipState,
    IdempotencyClaim,
    ListFilter,
    MediaStats,
    Page,
    PresignedRequest,
    Quota,
    QuotaExceeded,
    Relations,
    UploadedPart,
    Usage,
)

if TYPE_CHECKING:
    from services.core.ports import (
        AuditLog,
        BlobStore,
        EngagementStore,
        EventBus,
        IdempotencyStore,
        MediaRepository,
        RateLimiter,
        SnapshotStore,
        SocialStore,
        ViewRecorder,
    )


class Outbox(dict[str, MediaEvent]):
    """Events written with their change and not yet published, by `MediaEvent.outbox_key`:
    shared by an InMemoryMediaRepository (writes) and an InMemoryEventBus (publishes)."""


class InMemoryMediaRepository:
    """Same contract as DynamoMediaRepository: versioned writes, newest-first listings, and
    the events of a write kept in `outbox` until the bus publishes them."""

    def __init__(self, outbox: Outbox | None = None) -> None:
        self._items: dict[str, Media] = {}
        self.outbox = outbox if outbox is not None else Outbox()

    def _keep(self, events: Sequence[MediaEvent]) -> None:
        for event in events:
            self.outbox[event.outbox_key] = event

    def __len__(self) -> int:
        return len(self._items)

    def all(self) -> list[Media]:
        return list(self._items.values())

    async def create(
        self, media: Media, *, events: Sequence[MediaEvent] = (), quota: Quota | None = None
    ) -> None:
        if media.id in self._items:
            raise Conflict(f"media {media.id} already exists")
        if quota is not None:
            # As the table's counters: every PENDING record (expired ones until swept), and the
            # bytes of every record in a held status.
            mine = [m for m in self._items.values() if m.owner_id == media.owner_id]
            pending = sum(1 for m in mine if m.status is MediaStatus.PENDING)
            held = sum(m.size for m in mine if m.status in HELD_STATUSES)
            if pending >= quota.max_pending:
                raise QuotaExceeded("pendingUploads", pending=pending, held_bytes=held)
            if held + media.size > quota.max_bytes:
                raise QuotaExceeded("bytes", pending=pending, held_bytes=held)
        self._items[media.id] = media
        self._keep(events)

    async def get(self, media_id: str) -> Media | None:
        return self._items.get(media_id)

    async def get_many(self, media_ids: list[str]) -> dict[str, Media]:
        return {media_id: self._items[media_id] for media_id in media_ids if media_id in self._items}

    async def save(
        self,
        media: Media,
        *,
        expected_version: int,
        previous: Media | None = None,
        events: Sequence[MediaEvent] = (),
    ) -> None:
        current = self._items.get(media.id)
        if current is None or current.version != expected_version:
            raise Conflict(f"media {media.id} changed meanwhile")
        self._items[media.id] = media
        self._keep(events)

    async def find_completed_by_sha256(self, owner_id: str, sha256: str) -> Media | None:
        matching = [
            media
            for media in self._items.values()
            if media.owner_id == owner_id and media.sha256 == sha256 and media.status is MediaStatus.COMPLETED
        ]
        return max(matching, key=self.position_of) if matching else None

    async def completed_hashes(self, owner_id: str, *, limit: int) -> list[tuple[str, str]]:
        completed = sorted(
            (m for m in self._items.values() if m.owner_id == owner_id and m.status is MediaStatus.COMPLETED),
            key=self.position_of,
            reverse=True,
        )
        return [(m.id, m.phash) for m in completed[:limit] if m.phash]

    async def list_by_owner(
        self, owner_id: str, *, limit: int, after: str | None, filter: ListFilter | None = None
    ) -> Page:
        wanted = filter or ListFilter()
        return self._page(
            (
                media
                for media in self._items.values()
                if media.owner_id == owner_id
                and (wanted.status is None or media.status is wanted.status)
                and (wanted.tag is None or wanted.tag in media.tags)
                and (wanted.created_after is None or media.created_at >= wanted.created_after)
                and (wanted.created_before is None or media.created_at <= wanted.created_before)
            ),
            limit,
            after,
        )

    async def list_by_tag(self, tag: str, *, limit: int, after: str | None) -> Page:
        return self._page((m for m in self._items.values() if tag in m.tags), limit, after)

    async def list_completed(self, visibility: Visibility, *, limit: int, after: str | None) -> Page:
        return self._page(
            (
                m
                for m in self._items.values()
                if m.status is MediaStatus.COMPLETED and m.visibility is visibility
            ),
            limit,
            after,
        )

    async def count_by_status(self, owner_id: str) -> dict[MediaStatus, int]:
        counts: dict[MediaStatus, int] = {}
        for media in self._items.values():
            if media.owner_id == owner_id:
                counts[media.status] = counts.get(media.status, 0) + 1
        return counts

    def _page(self, candidates: Iterable[Media], limit: int, after: str | None) -> Page:
        matching = sorted(candidates, key=self.position_of, reverse=True)
        if after is not None:
            matching = [media for media in matching if self.position_of(media) < after]
        items = matching[:limit]
        return Page(
            items=items,
            has_more=len(matching) > limit,
            last_position=self.position_of(items[-1]) if items else None,
        )

    async def oldest_with_status(self, status: MediaStatus, *, limit: int) -> list[Media]:
        def order(media: Media) -> str:
            # As the table's index: DELETED by when it is due for purge.
            if media.status is MediaStatus.DELETED and media.purge_after is not None:
                return f"{media.purge_after.isoformat()}#{media.id}"
            return self.position_of(media)

        matching = sorted((media for media in self._items.values() if media.status is status), key=order)
        return matching[:limit]

    async def scan(self, *, limit: int, after: str | None) -> Page:
        ids = sorted(self._items)
        if after is not None:
            ids = [media_id for media_id in ids if media_id > after]
        items = [self._items[media_id] for media_id in ids[:limit]]
        return Page(items, len(ids) > limit, items[-1].id if items else None)

    async def delete(self, media: Media, *, events: Sequence[MediaEvent] = ()) -> None:
        current = self._items.get(media.id)
        if current is None or current.version != media.version:
            raise Conflict(f"media {media.id} changed meanwhile")
        del self._items[media.id]
        self._keep(events)

    def position_of(self, media: Media) -> str:
        return f"{media.created_at.isoformat()}#{media.id}"

    async def owner_usage(self, owner_id: str, status: MediaStatus, *, now: datetime) -> Usage:
        held = [
            media
            for media in self._items.values()
            if media.owner_id == owner_id and media.status is status and not media.is_expired(now)
        ]
        return Usage(count=len(held), bytes=sum(media.size for media in held))

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
        # Open multipart uploads: upload id -> (key, content type, parts by number).
        self.multipart: dict[str, tuple[str, str, dict[int, bytes]]] = {}

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

    def put_part(self, upload_id: str, part_number: int, data: bytes) -> str:
        """Stands in for the client's PUT of one part; returns the ETag."""
        self.multipart[upload_id][2][part_number] = data
        return _etag(data)

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        upload_id = f"upload-{len(self.multipart) + 1}"
        self.multipart[upload_id] = (key, content_type, {})
        return upload_id

    async def presign_part(
        self, key: str, upload_id: str, part_number: int, *, sha256_b64: str | None, expires_in: int
    ) -> PresignedRequest:
        headers = {"x-amz-checksum-sha256": sha256_b64} if sha256_b64 else {}
        url = (
            f"https://blobs.invalid/{key}?uploadId={upload_id}&partNumber={part_number}&X-Amz-Signature=fake"
        )
        return PresignedRequest(url=url, method="PUT", headers=headers, expires_in=expires_in)

    async def list_parts(self, key: str, upload_id: str) -> list[UploadedPart] | None:
        upload = self.multipart.get(upload_id)
        if upload is None:
            return None
        return [
            UploadedPart(number, len(data), _etag(data), _b64_sha256(data))
            for number, data in sorted(upload[2].items())
        ]

    async def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> None:
        _, content_type, held = self.multipart.pop(upload_id)
        self.put(key, b"".join(held[part.part_number] for part in parts), content_type)

    async def write(self, key: str, data: bytes, *, content_type: str) -> None:
        self.put(key, data, content_type)

    async def delete_all_versions(self, prefix: str) -> int:
        doomed = [key for key in self._objects if key.startswith(prefix)]
        for key in doomed:
            del self._objects[key]
        return len(doomed)

    async def keys(self, prefix: str) -> AsyncIterator[str]:
        for key in sorted(self._objects):
            if key.startswith(prefix):
                yield key

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        self.multipart.pop(upload_id, None)

    async def put_file(self, key: str, path: str, *, content_type: str) -> None:
        with open(path, "rb") as source:
            self._objects[key] = _Blob(source.read(), content_type)

    async def copy(self, source: str, destination: str) -> None:
        if source not in self._objects:
            raise NotFound(f"object {source} is gone")
        self._objects[destination] = dataclasses.replace(self._objects[source])

    def get(self, key: str) -> bytes:
        return self._objects[key].data

    async def ping(self) -> None:
        return None


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class InMemoryIdempotencyStore:
    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], IdempotencyClaim] = {}

    async def claim(
        self, owner_id: str, key: str, claim: IdempotencyClaim, *, ttl_s: int
    ) -> IdempotencyClaim | None:
        holder = self.claims.setdefault((owner_id, key), claim)
        return None if holder is claim else holder

    async def release(self, owner_id: str, key: str, claim: IdempotencyClaim) -> None:
        if self.claims.get((owner_id, key)) == claim:
            del self.claims[(owner_id, key)]


class InMemoryRateLimiter:
    """A token bucket on a clock the test moves (`advance`)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._buckets: dict[str, tuple[float, float]] = {}

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def acquire(self, bucket: str, *, rate_per_s: float, burst: int, cost: int = 1) -> float:
        tokens, at = self._buckets.get(bucket, (float(burst), self.now))
        tokens = min(burst, tokens + (self.now - at) * rate_per_s)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / rate_per_s
        self._buckets[bucket] = (tokens, self.now)
        return wait

    async def acquire_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> list[float]:
        return [
            await self.acquire(b.name, rate_per_s=b.rate_per_s, burst=b.burst, cost=cost) for b in buckets
        ]


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
    publishing anything: a worker that dies between its write and its publish. With an
    `outbox` (the repository's), a published event leaves it and `deliver_pending` publishes
    what is left, as OutboxBus does."""

    def __init__(self, outbox: Outbox | None = None) -> None:
        self.outbox = outbox if outbox is not None else Outbox()
        self.published: list[MediaEvent] = []
        self.fail_next_publish: BaseException | None = None
        self._ids: dict[str, str] = {}  # dedupe key -> the id it was published under
        self._sequence = 0
        self._subscribers: dict[str, set[InMemorySubscription]] = {}

    async def publish(self, event: MediaEvent) -> str | None:
        if self.fail_next_publish is not None:
            error, self.fail_next_publish = self.fail_next_publish, None
            raise error
        self.outbox.pop(event.outbox_key, None)
        if event.dedupe_key in self._ids:
            return None
        self._sequence += 1
        event = dataclasses.replace(event, event_id=f"{self._sequence}-0")
        self._ids[event.dedupe_key] = event.event_id
        self.published.append(event)
        for subscription in self._subscribers.get(event.owner_id, ()):
            subscription.queue.put_nowait(event)
        return event.event_id

    async def published_id(self, event: MediaEvent) -> str | None:
        return self._ids.get(event.dedupe_key)

    async def deliver_pending(self, media_id: str) -> int:
        pending = sorted(key for key in self.outbox if key.startswith(f"{media_id}#"))
        for key in pending:
            await self.publish(self.outbox[key])
        return len(pending)

    async def last_id(self, user_id: str) -> str:
        return f"{self._sequence}-0"

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


class InMemoryEngagementStore:
    """Likes as a set of (media, user); counters derived from it."""

    def __init__(self) -> None:
        self.likes: set[tuple[str, str]] = set()
        self.views: dict[str, int] = {}

    async def like(self, media_id: str, user_id: str) -> bool:
        if (media_id, user_id) in self.likes:
            return False
        self.likes.add((media_id, user_id))
        return True

    async def unlike(self, media_id: str, user_id: str) -> bool:
        if (media_id, user_id) not in self.likes:
            return False
        self.likes.discard((media_id, user_id))
        return True

    async def liked(self, user_id: str, media_ids: list[str]) -> set[str]:
        return {m for m in media_ids if (m, user_id) in self.likes}

    async def add_views(self, counts: dict[str, int]) -> None:
        for media_id, count in counts.items():
            self.views[media_id] = self.views.get(media_id, 0) + count

    async def stats(self, media_ids: list[str]) -> dict[str, MediaStats]:
        return {
            m: MediaStats(
                like_count=sum(1 for liked, _ in self.likes if liked == m), view_count=self.views.get(m, 0)
            )
            for m in media_ids
        }

    async def forget_user(self, user_id: str) -> int:
        mine = {(m, user) for m, user in self.likes if user == user_id}
        self.likes -= mine
        return len(mine)

    async def forget(self, media_id: str) -> None:
        self.likes = {(m, user) for m, user in self.likes if m != media_id}
        self.views.pop(media_id, None)


class InMemoryAuditLog:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], AuditEntry] = {}

    async def record(self, entry: AuditEntry) -> None:
        self.items.setdefault((entry.media_id, entry.entry_id), entry)

    async def entries(self, media_id: str, *, limit: int, after: str | None) -> AuditPage:
        ids = sorted(entry_id for media, entry_id in self.items if media == media_id)
        if after is not None:
            ids = [entry_id for entry_id in ids if entry_id > after]
        return AuditPage([self.items[(media_id, i)] for i in ids[:limit]], len(ids) > limit)


class InMemorySnapshotStore:
    def __init__(self) -> None:
        self.snapshots: dict[str, list[str]] = {}

    async def save(self, media_ids: list[str], ttl_s: int) -> str:
        snapshot_id = str(len(self.snapshots) + 1)
        self.snapshots[snapshot_id] = list(media_ids)
        return snapshot_id

    async def load(self, snapshot_id: str) -> list[str] | None:
        return self.snapshots.get(snapshot_id)


class InMemorySocialStore:
    """Same contract as DynamoSocialStore: one directed edge per (user, other), a block
    outliving unfriending from either side."""

    def __init__(self) -> None:
        self.users: set[str] = set()
        self.edges: dict[tuple[str, str], FriendshipState] = {}

    async def touch_user(self, user_id: str) -> None:
        self.users.add(user_id)

    async def user_exists(self, user_id: str) -> bool:
        return user_id in self.users

    async def state(self, user_id: str, other: str) -> FriendshipState:
        mine, theirs = self.edges.get((user_id, other)), self.edges.get((other, user_id))
        if FriendshipState.BLOCKED in (mine, theirs):
            return FriendshipState.BLOCKED
        return mine or FriendshipState.NONE

    async def request(self, user_id: str, other: str) -> None:
        self.edges[(user_id, other)] = FriendshipState.REQUESTED
        self.edges[(other, user_id)] = FriendshipState.INCOMING

    async def befriend(self, user_id: str, other: str) -> None:
        self.edges[(user_id, other)] = self.edges[(other, user_id)] = FriendshipState.FRIENDS

    async def unfriend(self, user_id: str, other: str) -> None:
        for edge in ((user_id, other), (other, user_id)):
            if self.edges.get(edge) is not FriendshipState.BLOCKED:
                self.edges.pop(edge, None)

    async def block(self, user_id: str, other: str) -> None:
        self.edges[(user_id, other)] = FriendshipState.BLOCKED
        if self.edges.get((other, user_id)) is not FriendshipState.BLOCKED:
            self.edges.pop((other, user_id), None)

    async def relations(self, user_id: str, others: set[str]) -> Relations:
        blocked = {
            other
            for other in others
            if FriendshipState.BLOCKED in (self.edges.get((user_id, other)), self.edges.get((other, user_id)))
        }
        friends = {other for other in others if self.edges.get((user_id, other)) is FriendshipState.FRIENDS}
        return Relations(friends=frozenset(friends - blocked), blocked=frozenset(blocked))

    async def list_related(
        self, user_id: str, state: FriendshipState, *, limit: int, after: str | None
    ) -> tuple[list[str], bool]:
        ids = sorted(
            other
            for (owner, other), held in self.edges.items()
            if owner == user_id and held is state and (after is None or other > after)
        )
        return ids[:limit], len(ids) > limit


class InMemoryViewRecorder:
    """Views counted once per viewer per window, on a clock the caller passes (`at`)."""

    def __init__(self, log_length: int = 1000) -> None:
        self.log_length = log_length
        self.counted_until: dict[tuple[str, str], datetime] = {}
        self.pending_counts: dict[str, int] = {}
        self.logs: dict[str, list[tuple[str, datetime]]] = {}

    async def record(self, media_id: str, viewer_id: str, at: datetime, *, window_s: int) -> bool:
        until = self.counted_until.get((media_id, viewer_id))
        if until is not None and at < until:
            return False
        self.counted_until[(media_id, viewer_id)] = at + timedelta(seconds=window_s)
        self.pending_counts[media_id] = self.pending_counts.get(media_id, 0) + 1
        self.logs.setdefault(media_id, []).insert(0, (viewer_id, at))
        del self.logs[media_id][self.log_length :]
        return True

    async def pending(self, media_ids: list[str]) -> dict[str, int]:
        return {m: self.pending_counts[m] for m in media_ids if self.pending_counts.get(m)}

    async def take_pending(self) -> dict[str, int]:
        taken, self.pending_counts = self.pending_counts, {}
        return taken

    async def log(self, media_id: str, *, offset: int, limit: int) -> tuple[list[tuple[str, datetime]], bool]:
        entries = self.logs.get(media_id, [])[offset : offset + limit + 1]
        return entries[:limit], len(entries) > limit


if TYPE_CHECKING:
    # The fakes must keep up with the ports: mypy fails here when a port grows a method.
    _repository: MediaRepository = InMemoryMediaRepository()
    _blobs: BlobStore = InMemoryBlobStore()
    _bus: EventBus = InMemoryEventBus()
    _idempotency: IdempotencyStore = InMemoryIdempotencyStore()
    _limiter: RateLimiter = InMemoryRateLimiter()
    _engagement: EngagementStore = InMemoryEngagementStore()
    _audit: AuditLog = InMemoryAuditLog()
    _snapshots: SnapshotStore = InMemorySnapshotStore()
    _social: SocialStore = InMemorySocialStore()
    _views: ViewRecorder = InMemoryViewRecorder()
