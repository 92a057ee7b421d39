"""The audit log: who did what to a media item and when. Services write through `Auditor`;
the owner and admins read it (`mediaAuditLog`), even after the record itself was purged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ulid import ULID

from services.core.auth import Principal, require
from services.core.errors import NotFound
from services.core.media import Media, MediaStatus
from services.core.pagination import CursorCodec, page_size
from services.core.ports import AuditEntry, AuditLog

SYSTEM_ACTOR = "system"  # the worker and the purge job: no user acted
# Sorts after every ULID: the tombstone is always last, and a purge redone keeps one.
TOMBSTONE_ID = "~PURGED"


class AuditAction(StrEnum):
    CREATED = "CREATED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    QUARANTINED = "QUARANTINED"
    UPDATED = "UPDATED"
    VISIBILITY_CHANGED = "VISIBILITY_CHANGED"
    DELETED = "DELETED"
    RESTORED = "RESTORED"
    PURGED = "PURGED"


_OUTCOMES = {
    MediaStatus.COMPLETED: AuditAction.COMPLETED,
    MediaStatus.REJECTED: AuditAction.REJECTED,
    MediaStatus.QUARANTINED: AuditAction.QUARANTINED,
}


def changes_between(before: Media, after: Media, fields: tuple[str, ...]) -> dict[str, tuple[object, object]]:
    """The named fields that differ, as (before, after) in their JSON form."""
    old, new = before.to_record(), after.to_record()
    return {name: (old[name], new[name]) for name in fields if old[name] != new[name]}


@dataclass(frozen=True, slots=True)
class AuditPageView:
    entries: list[AuditEntry]
    cursors: list[str]
    has_next_page: bool


class Auditor:
    def __init__(self, log: AuditLog, cursors: CursorCodec) -> None:
        self._log = log
        self._cursors = cursors

    async def record(
        self,
        media: Media,
        actor: str,
        action: AuditAction,
        at: datetime,
        changes: Mapping[str, tuple[object, object]] | None = None,
        *,
        entry_id: str | None = None,
    ) -> None:
        await self._log.record(
            AuditEntry(
                media_id=media.id,
                owner_id=media.owner_id,
                entry_id=entry_id or str(ULID()),
                actor=actor,
                action=action.value,
                at=at,
                changes=dict(changes or {}),
            )
        )

    async def outcome(self, media: Media) -> None:
        """The worker decided: COMPLETED, REJECTED or QUARANTINED (anything else: no entry)."""
        action = _OUTCOMES.get(media.status)
        if action is not None:
            changes: dict[str, tuple[object, object]] = {"status": ("PROCESSING", media.status.value)}
            if media.reject_reason:
                changes["rejectReason"] = (None, media.reject_reason)
            await self.record(media, SYSTEM_ACTOR, action, media.updated_at, changes)

    async def entries(
        self, viewer: Principal | None, media_id: str, *, first: int | None, after: str | None
    ) -> AuditPageView:
        """Oldest first. Owner and admins only: raises Unauthenticated, NotFound (anyone else, or
        no such media), BadUserInput (bad first/cursor)."""
        principal = require(viewer)
        limit = page_size(first)
        scope = f"audit|{principal.user_id}|{media_id}"
        position = self._cursors.decode(after, scope)
        page = await self._log.entries(media_id, limit=limit, after=position)
        owner = page.entries[0].owner_id if page.entries else None
        if owner is None and position is None:
            raise NotFound("media not found")
        if owner is not None and owner != principal.user_id and not principal.is_admin:
            raise NotFound("media not found")  # not yours looks exactly like not existing
        cursors = [self._cursors.encode(entry.entry_id, scope) for entry in page.entries]
        return AuditPageView(page.entries, cursors, page.has_more)
