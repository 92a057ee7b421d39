"""Ports: what the domain needs from the outside world. Adapters in `infra/` implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from services.core.auth import Principal
from services.core.events import MediaEvent
from services.core.media import Media, MediaStatus, Visibility


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Media]
    has_more: bool
    # Position of the last entry READ (it may be one not returned): where the next page starts.
    last_position: str | None = None


# Bytes a user "holds": stored, being checked, or reserved by an upload in flight.
HELD_STATUSES = frozenset(
    {MediaStatus.PENDING, MediaStatus.PROCESSING, MediaStatus.COMPLETED, MediaStatus.QUARANTINED}
)


@dataclass(frozen=True, slots=True)
class Quota:
    """Limits a new record must fit, checked atomically with its creation (MediaRepository.create)."""

    max_pending: int
    max_bytes: int


class QuotaExceeded(Exception):
    """The owner's counters, as they stood when the create was refused."""

    def __init__(self, kind: str, *, pending: int, held_bytes: int) -> None:
        super().__init__(kind)
        self.kind = kind  # "pendingUploads" or "bytes"
        self.pending = pending
        self.held_bytes = held_bytes


@dataclass(frozen=True, slots=True)
class ListFilter:
    status: MediaStatus | None = None
    tag: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class PresignedRequest:
    url: str
    method: str
    headers: dict[str, str]
    expires_in: int


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """A part S3 holds for a multipart upload. `sha256_b64` is S3's ChecksumSHA256 when it has one."""

    part_number: int
    size: int
    etag: str
    sha256_b64: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """What one owner holds in one status: how many records, how many declared bytes."""

    count: int
    bytes: int


@dataclass(frozen=True, slots=True)
class BlobInfo:
    size: int
    content_type: str | None
    etag: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    storage_class: str | None = None  # None: STANDARD
    restore: str | None = None  # S3's x-amz-restore header of an archived object


@dataclass(slots=True)
class BlobStream:
    """An object opened for reading: its metadata now, its bytes as they come. Close it."""

    info: BlobInfo
    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]


class MediaRepository(Protocol):
    async def create(
        self, media: Media, *, events: Sequence[MediaEvent] = (), quota: Quota | None = None
    ) -> None:
        """Store a new record. Raises Conflict if the id exists. `events` are written in the
        same transaction (the outbox): published afterwards, by the writer or the relay. With
        `quota`: reserves the record's bytes (and a pending upload) on its owner's counters in
        the same atomic write, and raises QuotaExceeded instead of creating when they would pass
        the quota."""

    async def get(self, media_id: str) -> Media | None:
        """The record, or None. Expired PENDING records are returned: callers decide."""

    async def get_many(self, media_ids: list[str]) -> dict[str, Media]:
        """The records that exist among `media_ids`, in one batched read."""

    async def save(
        self,
        media: Media,
        *,
        expected_version: int,
        previous: Media | None = None,
        events: Sequence[MediaEvent] = (),
    ) -> None:
        """Replace the record if its stored version is `expected_version`; else raises Conflict.
        Tag index items, per-owner counters and `events` (the outbox) change in the same
        transaction."""

    async def find_completed_by_sha256(self, owner_id: str, sha256: str) -> Media | None:
        """A COMPLETED media of this owner with exactly these bytes, or None (may lag a write)."""

    async def list_by_owner(
        self, owner_id: str, *, limit: int, after: str | None, filter: ListFilter
    ) -> Page:
        """Newest first. `after` is a position from `position_of` or `Page.last_position`."""

    async def completed_hashes(self, owner_id: str, *, limit: int) -> list[tuple[str, str]]:
        """(id, perceptual hash) of the owner's newest `limit` COMPLETED media that have one,
        newest first: the near-duplicate search reads these, never whole records."""

    async def list_by_tag(self, tag: str, *, limit: int, after: str | None) -> Page:
        """Media of every owner with this (normalised) tag, newest first; callers filter visibility."""

    async def list_completed(self, visibility: Visibility, *, limit: int, after: str | None) -> Page:
        """Everyone's COMPLETED media of one visibility, newest first."""

    async def count_by_status(self, owner_id: str) -> dict[MediaStatus, int]:
        """Exact per-status counts of the owner's media, kept by every write; a status the owner
        has none of is absent."""

    async def oldest_with_status(self, status: MediaStatus, *, limit: int) -> list[Media]:
        """Oldest first: what the sweeper walks."""

    async def delete(self, media: Media, *, events: Sequence[MediaEvent] = ()) -> None:
        """Remove the record if unchanged since read; else raises Conflict. `events` as in create."""

    def position_of(self, media: Media) -> str:
        """An opaque position in a listing, after which the next page starts."""

    async def owner_usage(self, owner_id: str, status: MediaStatus, *, now: datetime) -> Usage:
        """Count and total size of the owner's records in `status`; expired PENDING ones excluded."""

    async def scan(self, *, limit: int, after: str | None) -> Page:
        """Every record, in no particular order, a page at a time: what reconcile walks."""

    async def ping(self) -> None:
        """Raises if the store is unreachable."""


class BlobStore(Protocol):
    async def presign_put(
        self, key: str, *, content_type: str, size: int, sha256_b64: str, expires_in: int
    ) -> PresignedRequest:
        """A PUT that only the declared bytes can satisfy."""

    async def presign_get(self, key: str, *, expires_in: int) -> str:
        """A short-lived URL to read the object."""

    async def delete(self, key: str) -> None:
        """Remove the object; no error if it is absent."""

    async def head(self, key: str) -> BlobInfo | None:
        """The object's size and type, or None if it does not exist."""

    async def open(self, key: str) -> BlobStream | None:
        """One GET: metadata and a stream of chunks (never whole in memory); None if absent."""

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload with per-part SHA-256 checksums; returns its upload id."""

    async def presign_part(
        self, key: str, upload_id: str, part_number: int, *, sha256_b64: str | None, expires_in: int
    ) -> PresignedRequest:
        """A PUT for one part; with `sha256_b64` the part's checksum is signed too."""

    async def list_parts(self, key: str, upload_id: str) -> list[UploadedPart] | None:
        """The parts received so far, by number; None if the upload does not exist (any more)."""

    async def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> None:
        """Assemble the object from `parts`. Raises BadUserInput if S3 refuses the parts."""

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the upload and its parts; no error if it is already gone."""

    async def put_file(self, key: str, path: str, *, content_type: str) -> None:
        """Upload a local file (streamed from disk), replacing any object at `key`."""

    async def copy(self, source: str, destination: str) -> None:
        """Server-side copy; the bytes never pass through us. Raises if `source` is absent."""

    async def delete_all_versions(self, prefix: str) -> int:
        """Remove every object under `prefix` with all its versions and delete markers;
        returns how many were removed (0 when nothing is left: idempotent)."""

    def keys(self, prefix: str) -> AsyncIterator[str]:
        """The current objects' keys under `prefix`."""

    async def write(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store a small object the service itself writes (an export)."""

    async def ping(self) -> None:
        """Raises if the store is unreachable."""


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[MediaEvent]: ...


class EventBus(Protocol):
    async def publish(self, event: MediaEvent) -> str | None:
        """Publish to the owner's subscribers; returns the event id, or None if this exact
        change (`event.dedupe_key`) was published before."""

    async def published_id(self, event: MediaEvent) -> str | None:
        """The id this change (`event.dedupe_key`) was published under, or None if it was not
        (or its id is no longer known)."""

    async def deliver_pending(self, media_id: str) -> int:
        """Publish now, in order, every committed change of this media whose event is still in
        the outbox (its publish failed, or its writer died before it); returns how many. What a
        redelivered message or a retried request calls instead of publishing again."""

    async def last_id(self, user_id: str) -> str:
        """A position no later than any event of the user published from now on: the newest
        kept event id, or an id before the next one when none is kept."""

    def subscribe(self, user_id: str, since: str | None = None) -> AbstractAsyncContextManager[Subscription]:
        """Events of one user from now on, until the context exits. With `since` (an event id),
        first the kept events after it, in order, then live ones: no gap, no duplicate.
        Raises BadUserInput: MALFORMED_SINCE, or EventsExpired when events after `since` were
        dropped from the kept history."""

    async def ping(self) -> None:
        """Raises if the bus is unreachable."""


@dataclass(frozen=True, slots=True)
class MediaStats:
    like_count: int = 0
    view_count: int = 0


class EngagementStore(Protocol):
    async def like(self, media_id: str, user_id: str) -> bool:
        """Record a like; False if this user already liked it (counted once)."""

    async def unlike(self, media_id: str, user_id: str) -> bool:
        """Remove a like; False if there was none."""

    async def liked(self, user_id: str, media_ids: list[str]) -> set[str]:
        """Which of `media_ids` the user likes, in one batched read."""

    async def stats(self, media_ids: list[str]) -> dict[str, MediaStats]:
        """Counters of each media, in one batched read (absent means zero)."""

    async def add_views(self, counts: dict[str, int]) -> None:
        """Add flushed view counts to the durable counters."""

    async def forget(self, media_id: str) -> None:
        """Remove every like and the counters of one media (purge); idempotent."""

    async def forget_user(self, user_id: str) -> int:
        """Take back every like the user gave (counters follow); returns how many."""


class SnapshotStore(Protocol):
    async def save(self, media_ids: list[str], ttl_s: int) -> str:
        """Keep a ranked list for `ttl_s` seconds; returns its id."""

    async def load(self, snapshot_id: str) -> list[str] | None:
        """The ranked list, or None once expired."""


@dataclass(frozen=True, slots=True)
class Relations:
    friends: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()  # blocked by the user, or blocking the user


class FriendshipState(StrEnum):
    NONE = "NONE"
    REQUESTED = "REQUESTED"  # the user asked the other
    INCOMING = "INCOMING"  # the other asked the user
    FRIENDS = "FRIENDS"
    BLOCKED = "BLOCKED"


class FriendGraph(Protocol):
    async def relations(self, user_id: str, others: set[str]) -> Relations:
        """Friendships and blocks between `user_id` and each of `others` (one batched read)."""


class NoFriends:
    """The friend graph before any friendship exists: FRIENDS media is then owner-only."""

    async def relations(self, user_id: str, others: set[str]) -> Relations:
        return Relations()


class SocialStore(FriendGraph, Protocol):
    async def touch_user(self, user_id: str) -> None:
        """Record that the user exists (idempotent)."""

    async def user_exists(self, user_id: str) -> bool: ...

    async def state(self, user_id: str, other: str) -> FriendshipState:
        """How `user_id` stands with `other`."""

    async def request(self, user_id: str, other: str) -> None:
        """Record a pending request from `user_id` to `other`."""

    async def befriend(self, user_id: str, other: str) -> None:
        """Both directions become friends; pending requests between them go."""

    async def unfriend(self, user_id: str, other: str) -> None:
        """Friendship and pending requests between them go (no error if none)."""

    async def block(self, user_id: str, other: str) -> None:
        """`user_id` blocks `other`; friendship and requests between them go."""

    async def list_related(
        self, user_id: str, state: FriendshipState, *, limit: int, after: str | None
    ) -> tuple[list[str], bool]:
        """User ids in `state` with `user_id` (FRIENDS or INCOMING), ordered, keyset paged."""


@dataclass(frozen=True, slots=True)
class CachedUrl:
    url: str
    expires_at: datetime


class UrlSigner(Protocol):
    async def sign(self, key: str, *, expires_in: int) -> str:
        """A URL for reading object `key` that stops working after `expires_in` seconds."""


class UrlCache(Protocol):
    async def get_many(self, entries: list[tuple[str, str]]) -> list[CachedUrl | None]:
        """The cached URL of each (owner id, key), in order (one round trip)."""

    async def put_many(self, entries: list[tuple[str, str, CachedUrl]]) -> None:
        """Cache each (owner id, key, url) until the URL expires (one round trip)."""

    async def forget_owner(self, owner_id: str) -> None:
        """Drop every cached URL of the owner's media at once."""


class ViewRecorder(Protocol):
    async def record(self, media_id: str, viewer_id: str, at: datetime, *, window_s: int) -> bool:
        """Count a view unless this viewer was counted within `window_s`; logs it (bounded)."""

    async def pending(self, media_ids: list[str]) -> dict[str, int]:
        """Views counted but not yet flushed to the durable counter."""

    async def take_pending(self) -> dict[str, int]:
        """Atomically take every pending count (for the flush)."""

    async def log(self, media_id: str, *, offset: int, limit: int) -> tuple[list[tuple[str, datetime]], bool]:
        """Newest first: (viewer, when); and whether more remain."""


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """Who holds an idempotency key: the media it created and a fingerprint of that request."""

    media_id: str
    fingerprint: str


class IdempotencyStore(Protocol):
    async def claim(
        self, owner_id: str, key: str, claim: IdempotencyClaim, *, ttl_s: int
    ) -> IdempotencyClaim | None:
        """Take the key for `claim`: None if taken now, else the claim that already holds it."""

    async def release(self, owner_id: str, key: str, claim: IdempotencyClaim) -> None:
        """Give the key up (the request that took it failed); only if `claim` still holds it."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One token bucket to charge: its name, refill rate and capacity."""

    name: str
    rate_per_s: float
    burst: int


class RateLimiter(Protocol):
    async def acquire(self, bucket: str, *, rate_per_s: float, burst: int, cost: int = 1) -> float:
        """Take `cost` tokens from the bucket: 0.0 if granted, else the seconds until they would be."""

    async def acquire_all(self, buckets: Sequence[Bucket], *, cost: int = 1) -> list[float]:
        """`acquire` on each bucket (every one is charged, whatever the others answer), in one
        round trip where the store allows: the waits, in order."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One step in a media's life. `entry_id` orders entries (a ULID; the purge tombstone has
    a fixed id that sorts last, so writing it twice keeps one)."""

    media_id: str
    owner_id: str
    entry_id: str
    actor: str
    action: str
    at: datetime
    changes: dict[str, tuple[object, object]] = field(default_factory=dict)  # field: (before, after)


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    has_more: bool


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None:
        """Store the entry; storing the same `entry_id` again changes nothing."""

    async def entries(self, media_id: str, *, limit: int, after: str | None) -> AuditPage:
        """Oldest first; `after` is an `entry_id`."""


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The token's principal. Raises Unauthenticated for any invalid token."""


class Telemetry(Protocol):
    def step(self, name: str) -> AbstractContextManager[None]:
        """Mark one step of a pipeline (a span when tracing is on)."""

    def annotate(self, **attributes: str | None) -> None:
        """Attach facts (media id, the upload's request id) to the work in progress: its span, its logs."""


class NoTelemetry:
    """Telemetry that records nothing: the default, and what unit tests use."""

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        yield

    def annotate(self, **attributes: str | None) -> None:
        return None
