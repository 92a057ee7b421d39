"""Human review: admins release or reject quarantined media; any viewer may report media, which
hides it until an admin has looked. Every decision is one event to the owner."""

from __future__ import annotations

from enum import StrEnum

from services.access.visibility import can_view
from services.core.auth import Principal, require
from services.core.errors import BadUserInput, Conflict, Forbidden, NotFound
from services.core.events import MediaEvent, MediaEventType
from services.core.media import Media, MediaStatus, utcnow
from services.core.ports import EventBus, MediaRepository

MAX_REASON = 500


class ReviewDecision(StrEnum):
    RELEASE = "RELEASE"
    REJECT = "REJECT"


_EVENT = {
    MediaStatus.COMPLETED: MediaEventType.COMPLETED,
    MediaStatus.REJECTED: MediaEventType.REJECTED,
    MediaStatus.QUARANTINED: MediaEventType.QUARANTINED,
}


class ReviewService:
    def __init__(self, repo: MediaRepository, bus: EventBus) -> None:
        self._repo = repo
        self._bus = bus

    async def queue(self, viewer: Principal | None, *, limit: int = 50) -> list[Media]:
        """Quarantined media, oldest first. Raises Unauthenticated, Forbidden (not an admin)."""
        _require_admin(viewer)
        return await self._repo.oldest_with_status(MediaStatus.QUARANTINED, limit=max(1, min(limit, 100)))

    async def review(self, viewer: Principal | None, media_id: str, decision: ReviewDecision) -> Media:
        """Release (→ COMPLETED) or reject (→ REJECTED) quarantined media. Raises Unauthenticated,
        Forbidden, NotFound, Conflict (not quarantined, or changed meanwhile), BadUserInput
        (infected media are never released)."""
        _require_admin(viewer)
        media = await self._repo.get(media_id)
        if media is None or media.status is MediaStatus.DELETED:
            raise NotFound("media not found")
        if media.status is not MediaStatus.QUARANTINED:
            raise Conflict(f"media is {media.status.value}, not QUARANTINED", status=media.status.value)
        round_ = media.review_round + 1
        now = utcnow()
        if decision is ReviewDecision.RELEASE:
            if media.quarantine_kind in ("malware", "replaced"):
                # Infected, or bytes that were never verified: never shown, only rejected.
                raise BadUserInput(f"{media.quarantine_kind} media cannot be released", mediaId=media.id)
            done = media.transition(MediaStatus.COMPLETED, now, quarantine_kind=None, review_round=round_)
        else:
            reason = f"rejected by review ({media.reject_reason or 'no reason given'})"
            done = media.transition(MediaStatus.REJECTED, now, reject_reason=reason, review_round=round_)
        await self._save(media, done)
        return done

    async def report(self, viewer: Principal | None, media_id: str, reason: str) -> None:
        """Send media the viewer can see to the review queue; hidden from others meanwhile.
        Raises Unauthenticated, NotFound (not visible), BadUserInput (no reason)."""
        principal = require(viewer)
        reason = " ".join(reason.split())[:MAX_REASON]
        if not reason:
            raise BadUserInput("a reason is required", field="reason")
        media = await self._repo.get(media_id)
        if media is None or not can_view(media, principal):
            raise NotFound("media not found")
        if media.status is MediaStatus.QUARANTINED:
            return  # already waiting for review
        if media.status is not MediaStatus.COMPLETED:
            raise NotFound("media not found")
        done = media.transition(
            MediaStatus.QUARANTINED,
            utcnow(),
            quarantine_kind="report",
            reject_reason=f"reported: {reason}",
            review_round=media.review_round + 1,
        )
        await self._save(media, done)

    async def _save(self, before: Media, after: Media) -> None:
        event = MediaEvent(_EVENT[after.status], after, after.updated_at)
        await self._repo.save(after, expected_version=before.version, events=(event,))
        await self._bus.publish(event)


def _require_admin(viewer: Principal | None) -> Principal:
    principal = require(viewer)
    if not principal.is_admin:
        raise Forbidden("only admins review media")
    return principal
