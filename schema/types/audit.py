"""AuditEntry: one step in a media's life, and pages of them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Self

import strawberry

from schema.types.connection import Connection
from services.core.audit import AuditPageView
from services.core.ports import AuditEntry as AuditEntryModel


@strawberry.type(description="One field an audited step changed, as JSON values.")
class AuditChange:
    field: str
    before: str | None = strawberry.field(description="JSON of the value before; null if none.")
    after: str | None = strawberry.field(description="JSON of the value after; null if none.")


@strawberry.type(description="Who did what to a media item, and when.")
class AuditEntry:
    entry_id: strawberry.ID
    media_id: strawberry.ID
    actor: str = strawberry.field(description="A user id, or `system` (worker, purge) or `reconcile`.")
    action: str = strawberry.field(
        description="CREATED, COMPLETED, REJECTED, QUARANTINED, UPDATED, VISIBILITY_CHANGED, DELETED, "
        "RESTORED or PURGED."
    )
    at: datetime
    changes: list[AuditChange]

    @classmethod
    def from_model(cls, entry: AuditEntryModel) -> Self:
        return cls(
            entry_id=strawberry.ID(entry.entry_id),
            media_id=strawberry.ID(entry.media_id),
            actor=entry.actor,
            action=entry.action,
            at=entry.at,
            changes=[
                AuditChange(field=name, before=_json(before), after=_json(after))
                for name, (before, after) in sorted(entry.changes.items())
            ],
        )


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value)


@strawberry.type(description="A media's audit log, oldest first.")
class AuditEntryConnection(Connection[AuditEntry]):
    @classmethod
    def from_page(cls, page: AuditPageView, *, has_previous_page: bool) -> Self:
        return cls.of(
            [AuditEntry.from_model(entry) for entry in page.entries],
            page.cursors,
            has_next_page=page.has_next_page,
            has_previous_page=has_previous_page,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )
