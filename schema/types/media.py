"""The Media type, built from the service model."""

from __future__ import annotations

from datetime import datetime
from typing import Self, cast

import strawberry
from strawberry import relay

from schema.types.context import Info
from schema.types.enums import Availability, MediaStatus, Visibility
from schema.types.prefetch import Prefetched
from schema.types.scalars import Long
from schema.types.variant import MediaVariant
from services.core.errors import NotFound
from services.core.media import Media as MediaModel


@strawberry.type(description="A user, as far as others may see them.")
class User:
    id: strawberry.ID


@strawberry.type(description="A photo or video.")
class Media(relay.Node):
    uid: relay.NodeID[str]
    status: MediaStatus
    filename: str
    content_type: str
    size: Long = strawberry.field(description="Declared size in bytes.")
    sha256: str = strawberry.field(description="SHA-256 of the bytes, lowercase hex.")
    title: str
    tags: list[str]
    visibility: Visibility
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    reject_reason: str | None = strawberry.field(
        description="Why processing refused the upload (REJECTED/QUARANTINED)."
    )
    expires_at: datetime | None = strawberry.field(
        description="While PENDING: when the upload is abandoned if no bytes arrived."
    )
    owner: User
    width: int | None = strawberry.field(description="Pixels, upright (EXIF orientation applied).")
    height: int | None
    blurhash: str | None = strawberry.field(description="A BlurHash placeholder to show while loading.")
    quarantine_kind: str | None = strawberry.field(
        description="Why it is QUARANTINED: malware, moderation or report."
    )
    deleted_at: datetime | None = strawberry.field(description="When it went to the trash.")
    deleted_by: strawberry.ID | None = strawberry.field(description="Who deleted it: the owner or an admin.")
    purge_after: datetime | None = strawberry.field(
        description="While DELETED: restorable until then; afterwards it is purged for good.",
    )
    _model: strawberry.Private[MediaModel]
    # What the listing resolver read for the page up front (schema/types/prefetch.py); None:
    # the fields below go through the request's loaders.
    _prefetched: strawberry.Private[Prefetched | None] = None

    @strawberry.field(description="Videos: length in seconds.")
    def duration_seconds(self) -> float | None:
        duration = self._model.duration_ms
        return duration / 1000 if duration is not None else None

    @strawberry.field(description="Videos: a still frame (WebP), shown before playback.")
    def poster(self) -> MediaVariant | None:
        variant = self._model.variant("poster")
        return (
            MediaVariant.from_model(self._model, variant, self._prefetched) if variant is not None else None
        )

    @strawberry.field(description="The derived thumbnails, small first (images and video posters).")
    def thumbnails(self) -> list[MediaVariant]:
        return [
            MediaVariant.from_model(self._model, variant, self._prefetched)
            for name in ("thumb-small", "thumb-large")
            if (variant := self._model.variant(name)) is not None
        ]

    @strawberry.field(
        description="An earlier media of the same owner that looks the same (perceptual hash); "
        "null when none, or when you may not see it."
    )
    async def duplicate_of(self, info: Info) -> Media | None:
        if self._model.duplicate_of is None:
            return None
        try:
            found = await info.context.services.gallery.get(info.context.principal, self._model.duplicate_of)
        except NotFound:
            return None
        return Media.from_model(found)

    @strawberry.field(description="The raw media id (a ULID); `id` is its global Relay id.")
    def media_id(self) -> strawberry.ID:
        return strawberry.ID(self.uid)

    # Prefetched: answered at once. Otherwise the awaitable of the request's loader: graphql-core
    # awaits what a resolver returns, so these stay synchronous (no coroutine per item per field).
    @strawberry.field(description="Likes, one per user, counted exactly.")
    def like_count(self, info: Info) -> int:
        stats = self._prefetched.stats_of(self.uid) if self._prefetched else None
        if stats is not None:
            return stats.like_count
        return cast(int, _stat(info, self.uid, "like_count"))

    @strawberry.field(description="Whether you like it (false for anonymous callers).")
    def liked_by_me(self, info: Info) -> bool:
        if self._prefetched is not None and self._prefetched.liked is not None:
            return self.uid in self._prefetched.liked
        return cast(bool, info.context.liked_loader().load(self.uid))

    @strawberry.field(description="How many times it was viewed.")
    def view_count(self, info: Info) -> int:
        stats = self._prefetched.stats_of(self.uid) if self._prefetched else None
        if stats is not None:
            return stats.view_count
        return cast(int, _stat(info, self.uid, "view_count"))

    @strawberry.field(
        description="A short-lived URL; null unless COMPLETED and visible. Serves the sanitised "
        "variant (no EXIF, no location) once it exists, never the original bytes then."
    )
    def url(self, info: Info) -> str | None:
        if self._prefetched is not None and self._prefetched.urls is not None:
            return self._prefetched.urls.get((self.uid, None))
        return cast(str | None, info.context.url_loader().load((self._model, None)))

    @strawberry.field(
        description="Whether `url` can be read now (one storage lookup): archived originals in "
        "Glacier Instant Retrieval are AVAILABLE; deeper archive classes say RESTORE_REQUIRED. "
        "Null unless COMPLETED and visible."
    )
    async def availability(self, info: Info) -> Availability | None:
        context = info.context
        return await context.services.gallery.availability(context.principal, self._model)

    @classmethod
    def from_model(cls, media: MediaModel, prefetched: Prefetched | None = None) -> Self:
        return cls(
            uid=media.id,
            status=media.status,
            filename=media.filename,
            content_type=media.content_type,
            size=Long(media.size),
            sha256=media.sha256,
            title=media.title,
            tags=list(media.tags),
            visibility=media.visibility,
            created_at=media.created_at,
            updated_at=media.updated_at,
            completed_at=media.completed_at,
            reject_reason=media.reject_reason,
            expires_at=media.expires_at,
            owner=User(id=strawberry.ID(media.owner_id)),
            width=media.width,
            height=media.height,
            blurhash=media.blurhash,
            quarantine_kind=media.quarantine_kind,
            deleted_at=media.deleted_at,
            deleted_by=strawberry.ID(media.deleted_by) if media.deleted_by else None,
            purge_after=media.purge_after,
            _model=media,
            _prefetched=prefetched,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: list[str], required: bool = False
    ) -> list[Self | None]:
        gallery = info.context.services.gallery
        found: list[Self | None] = []
        for media_id in node_ids:
            try:
                found.append(cls.from_model(await gallery.get(info.context.principal, media_id)))
            except NotFound:
                found.append(None)
        return found


async def _stat(info: Info, media_id: str, name: str) -> int:
    stats = await info.context.stats_loader().load(media_id)
    return int(getattr(stats, name))


def decode_media_id(raw: str) -> str:
    """Accept the global id from `Media.id` or a raw ULID. Anything else is simply not found."""
    try:
        global_id = relay.GlobalID.from_id(raw)
    except Exception:
        global_id = None
    if global_id is not None:
        if global_id.type_name != "Media":
            raise NotFound("media not found")
        raw = global_id.node_id
    # ASCII only: str.isalnum() and str.upper() also take other spellings ("\u017f".upper() is "S",
    # fullwidth digits are digits), and one media must have one id.
    if not (0 < len(raw) <= 64) or not (raw.isascii() and raw.isalnum()):
        raise NotFound("media not found")
    return raw.upper()
