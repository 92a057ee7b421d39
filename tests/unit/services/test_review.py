"""ReviewService: admins release or reject quarantined media; viewers report what they see."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.core.auth import Principal
from services.core.errors import BadUserInput, Conflict, Forbidden, NotFound, Unauthenticated
from services.core.events import MediaEvent, MediaEventType
from services.core.media import Media, MediaStatus, Visibility
from services.library.review import ReviewDecision, ReviewService
from tests.fakes import InMemoryEventBus, InMemoryMediaRepository, make_media

ADMIN = Principal("root", frozenset({"admin"}))
OWNER = Principal("user-1")
VIEWER = Principal("viewer")


@dataclass
class Env:
    service: ReviewService
    repo: InMemoryMediaRepository
    bus: InMemoryEventBus

    async def add(self, status: MediaStatus, kind: str | None = None, **fields: object) -> Media:
        import dataclasses

        media = dataclasses.replace(
            make_media(b"bytes", status=status, visibility=Visibility.PUBLIC),
            quarantine_kind=kind,
            reject_reason="held for review: term:x" if kind else None,
            **fields,  # type: ignore[arg-type]
        )
        await self.repo.create(media)
        return media

    async def stored(self, media: Media) -> Media:
        found = await self.repo.get(media.id)
        assert found is not None
        return found

    def events(self) -> list[MediaEventType]:
        return [event.type for event in self.bus.published]


@pytest.fixture
def env() -> Env:
    repo = InMemoryMediaRepository()
    bus = InMemoryEventBus(repo.outbox)
    return Env(ReviewService(repo, bus), repo, bus)


async def test_an_admin_releases_moderated_media(env: Env) -> None:
    media = await env.add(MediaStatus.QUARANTINED, "moderation")

    released = await env.service.review(ADMIN, media.id, ReviewDecision.RELEASE)

    assert released.status is MediaStatus.COMPLETED
    assert released.quarantine_kind is None and released.reject_reason is None
    assert await env.stored(media) == released
    assert env.events() == [MediaEventType.COMPLETED]


async def test_an_admin_rejects_quarantined_media(env: Env) -> None:
    media = await env.add(MediaStatus.QUARANTINED, "moderation")

    rejected = await env.service.review(ADMIN, media.id, ReviewDecision.REJECT)

    assert rejected.status is MediaStatus.REJECTED
    assert rejected.reject_reason == "rejected by review (held for review: term:x)"
    assert env.events() == [MediaEventType.REJECTED]


async def test_infected_media_are_never_released(env: Env) -> None:
    media = await env.add(MediaStatus.QUARANTINED, "malware")

    with pytest.raises(BadUserInput):
        await env.service.review(ADMIN, media.id, ReviewDecision.RELEASE)
    assert (await env.stored(media)).status is MediaStatus.QUARANTINED


@pytest.mark.parametrize(("viewer", "error"), [(None, Unauthenticated), (OWNER, Forbidden)])
async def test_only_admins_review(env: Env, viewer: Principal | None, error: type[Exception]) -> None:
    media = await env.add(MediaStatus.QUARANTINED, "moderation")

    with pytest.raises(error):
        await env.service.review(viewer, media.id, ReviewDecision.RELEASE)
    with pytest.raises(error):
        await env.service.queue(viewer)
    assert env.events() == []


async def test_only_quarantined_media_are_reviewed(env: Env) -> None:
    media = await env.add(MediaStatus.COMPLETED)

    with pytest.raises(Conflict):
        await env.service.review(ADMIN, media.id, ReviewDecision.REJECT)
    with pytest.raises(NotFound):
        await env.service.review(ADMIN, "NOPE", ReviewDecision.REJECT)


async def test_a_report_hides_media_until_review_and_a_release_announces_it_again(env: Env) -> None:
    media = await env.add(MediaStatus.COMPLETED)
    await env.bus.publish(MediaEvent(MediaEventType.COMPLETED, media, media.created_at))

    await env.service.report(VIEWER, media.id, "  spam\n and  scam ")

    reported = await env.stored(media)
    assert reported.status is MediaStatus.QUARANTINED
    assert reported.quarantine_kind == "report"
    assert reported.reject_reason == "reported: spam and scam"
    assert [item.id for item in await env.service.queue(ADMIN)] == [media.id]
    with pytest.raises(NotFound):  # hidden from others now
        await env.service.report(VIEWER, media.id, "again")
    await env.service.report(OWNER, media.id, "again")  # already queued: nothing changes
    assert await env.stored(media) == reported

    await env.service.review(ADMIN, media.id, ReviewDecision.RELEASE)

    # One event per transition, the second COMPLETED included (a new review round).
    assert env.events() == [MediaEventType.COMPLETED, MediaEventType.QUARANTINED, MediaEventType.COMPLETED]


async def test_media_the_viewer_cannot_see_cannot_be_reported(env: Env) -> None:
    private = await env.add(MediaStatus.COMPLETED, visibility=Visibility.PRIVATE)
    pending = await env.add(MediaStatus.PENDING)

    for media in (private, pending):
        with pytest.raises(NotFound):
            await env.service.report(VIEWER, media.id, "spam")
    with pytest.raises(BadUserInput):
        await env.service.report(OWNER, private.id, "   ")
    assert env.events() == []
