"""updateMedia: the owner changes visibility or the text they wrote (OWNER_TEXT_FIELDS)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.core.audit import AuditAction, Auditor, changes_between
from services.core.auth import Principal, require
from services.core.errors import Conflict, NotFound
from services.core.events import MediaEvent, MediaEventType
from services.core.media import OWNER_TEXT_FIELDS, Media, MediaStatus, Visibility, utcnow
from services.core.ports import EventBus, MediaRepository
from services.core.validation import normalize_tags, normalize_title


@dataclass(frozen=True, slots=True)
class MediaChanges:
    """What updateMedia may change: visibility, and each of OWNER_TEXT_FIELDS (None: unchanged).
    tests/unit/services/test_editing.py fails when a field here is not normalised, audited and
    moderated."""

    title: str | None = None
    tags: tuple[str, ...] | None = None
    visibility: Visibility | None = None


# How each owner-written field's input is checked and normalised (raises BadUserInput).
NORMALISE: dict[str, Callable[[Any], object]] = {"title": normalize_title, "tags": normalize_tags}


class EditingService:
    def __init__(
        self,
        repo: MediaRepository,
        bus: EventBus,
        *,
        auditor: Auditor | None = None,
        settled_only: bool = False,
    ) -> None:
        # A replica region (docs/multi-region.md) edits only media whose status is settled: a
        # whole-item write there, racing the home region's status move, could win last-writer-
        # wins and take the status back to PENDING everywhere.
        self._settled_only = settled_only
        self._repo = repo
        self._bus = bus
        self._auditor = auditor

    async def update(self, viewer: Principal | None, media_id: str, changes: MediaChanges) -> Media:
        """Apply the changes. Raises Unauthenticated, NotFound (not the caller's), BadUserInput
        (bad title/tags), Conflict (changed meanwhile: refetch and retry)."""
        principal = require(viewer)
        media = await self._repo.get(media_id)
        if media is None or media.owner_id != principal.user_id or media.status is MediaStatus.DELETED:
            raise NotFound("media not found")
        if self._settled_only and media.status in (MediaStatus.PENDING, MediaStatus.PROCESSING):
            raise Conflict("this upload is still being processed; retry once it is COMPLETED")
        values: dict[str, object] = {}
        for name in OWNER_TEXT_FIELDS:
            raw = getattr(changes, name)
            if raw is not None:
                values[name] = NORMALISE[name](raw)
        if changes.visibility is not None:
            values["visibility"] = changes.visibility
        if all(getattr(media, key) == value for key, value in values.items()):
            return media  # nothing changes: no write, no event
        updated = media.edit(utcnow(), **values)
        event = MediaEvent(MediaEventType.UPDATED, updated, updated.updated_at)
        try:
            await self._repo.save(updated, expected_version=media.version, previous=media, events=(event,))
        except Conflict:
            raise Conflict("media changed meanwhile; refetch and retry") from None
        await self._bus.publish(event)
        if self._auditor is not None:
            await self._audit(principal, media, updated)
        return updated

    async def _audit(self, principal: Principal, before: Media, after: Media) -> None:
        assert self._auditor is not None
        at = after.updated_at
        edited = changes_between(before, after, OWNER_TEXT_FIELDS)
        if edited:
            await self._auditor.record(after, principal.user_id, AuditAction.UPDATED, at, edited)
        moved = changes_between(before, after, ("visibility",))
        if moved:
            await self._auditor.record(after, principal.user_id, AuditAction.VISIBILITY_CHANGED, at, moved)
