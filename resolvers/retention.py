"""deleteMedia, restoreMedia, deletedMedia, mediaAuditLog."""

from __future__ import annotations

import strawberry

from schema.types.audit import AuditEntryConnection
from schema.types.connection import MediaConnection
from schema.types.context import Info
from schema.types.media import Media, decode_media_id
from services.core.audit import Auditor
from services.library.retention import RetentionService


def _retention(info: Info) -> RetentionService:
    return info.context.services.retention


def _audit(info: Info) -> Auditor:
    return info.context.services.audit


async def delete_media(info: Info, id: strawberry.ID) -> Media:
    deleted = await _retention(info).delete(info.context.principal, decode_media_id(id))
    return Media.from_model(deleted)


async def restore_media(info: Info, id: strawberry.ID) -> Media:
    restored = await _retention(info).restore(info.context.principal, decode_media_id(id))
    return Media.from_model(restored)


async def deleted_media(info: Info, first: int | None = None, after: str | None = None) -> MediaConnection:
    page = await _retention(info).trash(info.context.principal, first=first, after=after)
    return MediaConnection.from_page(page, has_previous_page=after is not None)


async def media_audit_log(
    info: Info, id: strawberry.ID, first: int | None = None, after: str | None = None
) -> AuditEntryConnection:
    page = await _audit(info).entries(info.context.principal, decode_media_id(id), first=first, after=after)
    return AuditEntryConnection.from_page(page, has_previous_page=after is not None)
