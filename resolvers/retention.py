"""deleteMedia, restoreMedia, deletedMedia, mediaAuditLog."""

from __future__ import annotations

import strawberry

from schema.types.audit import AuditEntryConnection
from schema.types.connection import MediaConnection
from schema.types.context import Info
from schema.types.media import Media, decode_media_id
from services.core.audit import Auditor
from services.core.errors import MediagraphError
from services.library.retention import RetentionService


def _retention(info: Info) -> RetentionService:
    service = info.context.services.retention
    if service is None:
        raise MediagraphError("retention is not configured")
    return service


def _audit(info: Info) -> Auditor:
    service = info.context.services.audit
    if service is None:
        raise MediagraphError("the audit log is not configured")
    return service


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
