"""Ports: what the domain needs from the outside world. Adapters in `infra/` implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from services.auth import Principal
from services.events import MediaEvent
from services.media import Media, MediaStatus


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Media]
    has_more: bool


@dataclass(frozen=True, slots=True)
class PresignedRequest:
    url: str
    method: str
    headers: dict[str, str]
    expires_in: int


@dataclass(frozen=True, slots=True)
class BlobInfo:
    size: int
    content_type: str | None
    etag: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class BlobStream:
    """An object opened for reading: its metadata now, its bytes as they come. Close it."""

    info: BlobInfo
    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]


class MediaRepository(Protocol):
    async def create(self, media: Media) -> None:
        """Store a new record. Raises Conflict if the id exists."""

    async def get(self, media_id: str) -> Media | None:
        """The record, or None. Expired PENDING records are returned: callers decide."""

    async def save(self, media: Media, *, expected_version: int) -> None:
        """Replace the record if its stored version is `expected_version`; else raises Conflict."""

    async def list_by_owner(
        self, owner_id: str, *, limit: int, after: str | None, status: MediaStatus | None = None
    ) -> Page:
        """Newest first. `after` is a position from `position_of`."""

    async def oldest_with_status(self, status: MediaStatus, *, limit: int) -> list[Media]:
        """Oldest first: what the sweeper walks."""

    async def delete(self, media: Media) -> None:
        """Remove the record if unchanged since read; else raises Conflict."""

    def position_of(self, media: Media) -> str:
        """An opaque position in a listing, after which the next page starts."""

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

    async def ping(self) -> None:
        """Raises if the store is unreachable."""


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[MediaEvent]: ...


class EventBus(Protocol):
    async def publish(self, event: MediaEvent) -> str | None:
        """Publish to the owner's subscribers; returns the event id, or None if this exact
        change (`event.dedupe_key`) was published before."""

    def subscribe(self, user_id: str, since: str | None = None) -> AbstractAsyncContextManager[Subscription]:
        """Events of one user from now on, until the context exits. With `since` (an event id),
        first the kept events after it, in order, then live ones: no gap, no duplicate.
        Raises BadUserInput: MALFORMED_SINCE, or EventsExpired when events after `since` were
        dropped from the kept history."""

    async def ping(self) -> None:
        """Raises if the bus is unreachable."""


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The token's principal. Raises Unauthenticated for any invalid token."""
