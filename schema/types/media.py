"""The Media type, built from the service model."""

from __future__ import annotations

from datetime import datetime
from typing import Self

import strawberry
from strawberry import relay

from schema.types.context import Info
from schema.types.enums import Availability, MediaStatus, Visibility
from schema.types.scalars import Long
from services.errors import NotFound
from services.media import Media as MediaModel


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
    deleted_at: datetime | None = strawberry.field(description="When it went to the trash.")
    deleted_by: strawberry.ID | None = strawberry.field(description="Who deleted it: the owner or an admin.")
    purge_after: datetime | None = strawberry.field(
        description="While DELETED: restorable until then; afterwards it is purged for good.",
    )
    _model: strawberry.Private[MediaModel]

    @strawberry.field(description="The raw media id (a ULID); `id` is its global Relay id.")
    def media_id(self) -> strawberry.ID:
        return strawberry.ID(self.uid)

    @strawberry.field(description="Likes, one per user, counted exactly.")
    async def like_count(self, info: Info) -> int:
        return (await info.context.stats_loader().load(self.uid)).like_count

    @strawberry.field(description="Whether you like it (false for anonymous callers).")
    async def liked_by_me(self, info: Info) -> bool:
        return await info.context.liked_loader().load(self.uid)

    @strawberry.field(description="How many times it was viewed.")
    async def view_count(self, info: Info) -> int:
        return (await info.context.stats_loader().load(self.uid)).view_count

    @strawberry.field(description="A short-lived URL for the bytes; null unless COMPLETED and visible.")
    async def url(self, info: Info) -> str | None:
        context = info.context
        return await context.services.gallery.url_for(context.principal, self._model)

    @strawberry.field(
        description="Whether `url` can be read now (one storage lookup): archived originals in "
        "Glacier Instant Retrieval are AVAILABLE; deeper archive classes say RESTORE_REQUIRED. "
        "Null unless COMPLETED and visible."
    )
    async def availability(self, info: Info) -> Availability | None:
        context = info.context
        return await context.services.gallery.availability(context.principal, self._model)

    @classmethod
    def from_model(cls, media: MediaModel) -> Self:
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
            deleted_at=media.deleted_at,
            deleted_by=strawberry.ID(media.deleted_by) if media.deleted_by else None,
            purge_after=media.purge_after,
            _model=media,
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
    if not (0 < len(raw) <= 64) or not raw.isalnum():
        raise NotFound("media not found")
    return raw.upper()
