"""The Media record: statuses, visibility, and the transitions between them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class MediaStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    QUARANTINED = "QUARANTINED"
    DELETED = "DELETED"


class Visibility(StrEnum):
    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"
    FRIENDS = "FRIENDS"


# Outcomes of processing: once here, S3 events for the object change nothing.
TERMINAL = frozenset({MediaStatus.COMPLETED, MediaStatus.REJECTED, MediaStatus.QUARANTINED})

# Which status may follow which. Soft delete (DELETED) remembers the status it left.
TRANSITIONS: dict[MediaStatus, frozenset[MediaStatus]] = {
    MediaStatus.PENDING: frozenset({MediaStatus.PROCESSING, *TERMINAL, MediaStatus.DELETED}),
    MediaStatus.PROCESSING: frozenset({*TERMINAL, MediaStatus.DELETED}),
    MediaStatus.COMPLETED: frozenset({MediaStatus.DELETED, MediaStatus.QUARANTINED}),
    MediaStatus.REJECTED: frozenset({MediaStatus.DELETED}),
    MediaStatus.QUARANTINED: frozenset({MediaStatus.COMPLETED, MediaStatus.REJECTED, MediaStatus.DELETED}),
    MediaStatus.DELETED: frozenset(),  # restore goes back to `status_before_delete`
}


_DATETIMES = (
    "created_at",
    "updated_at",
    "expires_at",
    "completed_at",
    "deleted_at",
    "purge_after",
    "purge_lease_until",
)


# What owners write about their media and change with updateMedia. Declared once: the moderator
# reads the text of each (infra/media/moderation.py, through `owner_text`) and the editing service
# audits each as UPDATED (services/library/editing.py). A new owner-editable text field (a
# caption, say: docs/extending.md) is a Media field named here; tests fail if it is not.
OWNER_TEXT_FIELDS: tuple[str, ...] = ("title", "tags")


def owner_text(media: Media) -> tuple[str, ...]:
    """Every piece of text the owner wrote on `media` (each OWNER_TEXT_FIELDS value, flattened)."""
    text: list[str] = []
    for name in OWNER_TEXT_FIELDS:
        value = getattr(media, name)
        text.extend(value if isinstance(value, tuple) else (value,) if value else ())
    return tuple(text)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Variant:
    """A file the worker derived from the upload (EXIF-free, orientation applied)."""

    name: str  # "display" (what Media.url serves), "thumb-small", "thumb-large"
    key: str
    width: int
    height: int
    content_type: str = "image/webp"


@dataclass(frozen=True, slots=True)
class Media:
    id: str
    owner_id: str
    status: MediaStatus
    filename: str
    content_type: str
    size: int
    sha256: str  # lowercase hex of the declared bytes
    title: str
    tags: tuple[str, ...]
    visibility: Visibility
    object_key: str
    created_at: datetime
    updated_at: datetime
    version: int = 1
    expires_at: datetime | None = None  # set while PENDING: abandoned uploads expire
    completed_at: datetime | None = None
    reject_reason: str | None = None
    request_id: str | None = None  # the request that created it, carried into the worker's logs
    multipart_upload_id: str | None = None  # S3's UploadId while a multipart upload is open
    part_size: int | None = None  # bytes per part (the last may be smaller) of a multipart upload
    # Soft delete (services/library/retention.py): who and when, until when it can be restored, and
    # the status restore brings back. `purge_lease_until`: a purger's claim (see retention).
    deleted_at: datetime | None = None
    deleted_by: str | None = None
    purge_after: datetime | None = None
    status_before_delete: MediaStatus | None = None
    purge_lease_until: datetime | None = None
    # Filled in by the processing pipeline (see services/ingest/pipeline.py).
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None  # videos
    blurhash: str | None = None
    phash: str | None = None  # perceptual hash (dHash, 16 hex digits)
    duplicate_of: str | None = None  # an earlier media of the same owner that looks the same
    variants: tuple[Variant, ...] = ()
    quarantine_kind: str | None = None  # "malware" | "moderation" | "report"
    # Bumped by every review decision or report: the same outcome may then be announced again.
    review_round: int = 0
    # The S3 `sequencer` of the newest object event acted on (real S3 only; moto omits it).
    sequencer: str | None = None

    def variant(self, name: str) -> Variant | None:
        return next((variant for variant in self.variants if variant.name == name), None)

    def is_expired(self, now: datetime) -> bool:
        return self.status is MediaStatus.PENDING and self.expires_at is not None and self.expires_at <= now

    def transition(self, to: MediaStatus, now: datetime, **changes: Any) -> Media:
        """Return the record in status `to`; raises ValueError for a move the state machine forbids."""
        if to not in TRANSITIONS[self.status]:
            raise ValueError(f"{self.status} cannot become {to}")
        extra: dict[str, Any] = {}
        if to is MediaStatus.COMPLETED:
            extra = {"expires_at": None, "completed_at": now, "reject_reason": None}
        elif to in TERMINAL:
            extra = {"expires_at": None}
        return dataclasses.replace(
            self, status=to, updated_at=now, version=self.version + 1, **{**extra, **changes}
        )

    def soft_delete(self, now: datetime, actor: str, purge_after: datetime) -> Media:
        """The record in the trash, remembering its status. Raises ValueError if already DELETED."""
        return self.transition(
            MediaStatus.DELETED,
            now,
            deleted_at=now,
            deleted_by=actor,
            purge_after=purge_after,
            status_before_delete=self.status,
        )

    def restored(self, now: datetime) -> Media:
        """The record as it was before the soft delete. Raises ValueError unless DELETED."""
        if self.status is not MediaStatus.DELETED or self.status_before_delete is None:
            raise ValueError(f"{self.status} cannot be restored")
        return dataclasses.replace(
            self,
            status=self.status_before_delete,
            updated_at=now,
            version=self.version + 1,
            deleted_at=None,
            deleted_by=None,
            purge_after=None,
            status_before_delete=None,
            purge_lease_until=None,
        )

    def edit(self, now: datetime, **changes: Any) -> Media:
        """The record with owner-editable fields changed, as a new version."""
        return dataclasses.replace(self, updated_at=now, version=self.version + 1, **changes)

    def to_record(self) -> dict[str, Any]:
        """A JSON-compatible dict: the form adapters store and publish."""
        record: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = [dataclasses.asdict(item) if isinstance(item, Variant) else item for item in value]
            elif isinstance(value, StrEnum):
                value = value.value
            record[field.name] = value
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Media:
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in record.items() if key in names}
        for key in _DATETIMES:
            if values.get(key) is not None:
                values[key] = datetime.fromisoformat(values[key])
        values["status"] = MediaStatus(values["status"])
        if values.get("status_before_delete") is not None:
            values["status_before_delete"] = MediaStatus(values["status_before_delete"])
        values["visibility"] = Visibility(values["visibility"])
        values["tags"] = tuple(values.get("tags") or ())
        values["size"] = int(values["size"])
        values["version"] = int(values.get("version", 1))
        if values.get("part_size") is not None:
            values["part_size"] = int(values["part_size"])
        for key in ("width", "height", "duration_ms", "review_round"):
            if values.get(key) is not None:
                values[key] = int(values[key])
        values["variants"] = tuple(
            Variant(**{**item, "width": int(item["width"]), "height": int(item["height"])})
            for item in values.get("variants") or ()
        )
        return cls(**values)
