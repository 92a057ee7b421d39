"""RetentionService and Auditor with in-memory ports: who may delete and restore, the window,
leases, what purge removes, and who may read the audit log."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from services.core.audit import Auditor
from services.core.auth import Principal
from services.core.errors import Conflict, NotFound, Unauthenticated
from services.core.events import MediaEventType
from services.core.media import Media, MediaStatus, Visibility
from services.core.pagination import CursorCodec
from services.library.retention import RetentionPolicy, RetentionService
from tests.fakes import (
    InMemoryAuditLog,
    InMemoryBlobStore,
    InMemoryEngagementStore,
    InMemoryEventBus,
    InMemoryMediaRepository,
    make_media,
)
from tests.media_files import jpeg_bytes

ALICE = Principal("alice")
BOB = Principal("bob")
ADMIN = Principal("root", roles=frozenset({"admin"}))
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass
class Env:
    service: RetentionService
    repo: InMemoryMediaRepository
    blobs: InMemoryBlobStore
    bus: InMemoryEventBus
    likes: InMemoryEngagementStore
    auditor: Auditor
    clock: list[datetime]


@pytest.fixture
def env() -> Env:
    repo, blobs, bus, likes = (
        InMemoryMediaRepository(),
        InMemoryBlobStore(),
        InMemoryEventBus(),
        InMemoryEngagementStore(),
    )
    auditor = Auditor(InMemoryAuditLog(), CursorCodec(b"k"))
    clock = [NOW]
    service = RetentionService(
        repo,
        blobs,
        bus,
        likes,
        auditor,
        CursorCodec(b"k"),
        RetentionPolicy(retention=timedelta(days=7), purge_lease=timedelta(minutes=1)),
        clock=lambda: clock[0],
    )
    return Env(service, repo, blobs, bus, likes, auditor, clock)


async def stored(env: Env, status: MediaStatus = MediaStatus.COMPLETED) -> Media:
    media = make_media(jpeg_bytes(10), owner_id="alice", status=status, visibility=Visibility.PUBLIC)
    await env.repo.create(media)
    env.blobs.put(media.object_key, b"bytes")
    env.blobs.put(f"derived/{media.id}/small.jpg", b"small")
    await env.likes.like(media.id, "bob")
    return media


async def test_only_owner_or_admin_deletes(env: Env) -> None:
    media = await stored(env)
    with pytest.raises(Unauthenticated):
        await env.service.delete(None, media.id)
    with pytest.raises(NotFound):
        await env.service.delete(BOB, media.id)
    deleted = await env.service.delete(ADMIN, media.id)
    assert (deleted.status, deleted.deleted_by, deleted.deleted_at) == (MediaStatus.DELETED, "root", NOW)
    assert deleted.purge_after == NOW + timedelta(days=7)
    assert deleted.status_before_delete is MediaStatus.COMPLETED
    assert [event.type for event in env.bus.published] == [MediaEventType.DELETED]


async def test_restore_inside_the_window_only(env: Env) -> None:
    media = await stored(env, MediaStatus.QUARANTINED)
    with pytest.raises(Conflict):
        await env.service.restore(ALICE, media.id)  # not deleted
    await env.service.delete(ALICE, media.id)
    env.clock[0] = NOW + timedelta(days=7)
    with pytest.raises(Conflict):
        await env.service.restore(ALICE, media.id)
    env.clock[0] = NOW + timedelta(days=6)
    restored = await env.service.restore(ALICE, media.id)
    assert restored.status is MediaStatus.QUARANTINED and restored.purge_after is None
    assert dataclasses.replace(restored, version=0, updated_at=NOW) == dataclasses.replace(
        media, version=0, updated_at=NOW
    )


async def test_purge_skips_a_leased_media_and_what_is_not_due(env: Env) -> None:
    media = await stored(env)
    await env.service.delete(ALICE, media.id)
    assert await env.service.purge_due() == 0
    deleted = await env.repo.get(media.id)
    assert deleted is not None
    leased = dataclasses.replace(
        deleted, purge_lease_until=NOW + timedelta(days=8), version=deleted.version + 1
    )
    await env.repo.save(leased, expected_version=deleted.version)
    assert await env.service.purge_due(now=NOW + timedelta(days=7, hours=1)) == 0
    with pytest.raises(Conflict):
        await env.service.restore(ALICE, media.id)  # being purged: no way back
    assert await env.service.purge_due(now=NOW + timedelta(days=9)) == 1
    assert len(env.repo) == 0 and env.blobs.stored_keys() == set()
    assert env.likes.likes == set()


async def test_purge_leaves_completed_media_alone(env: Env) -> None:
    media = await stored(env)
    assert await env.service.purge(media, now=NOW + timedelta(days=100)) is False
    assert await env.repo.get(media.id) == media


async def test_audit_log_is_the_owners_and_admins(env: Env) -> None:
    media = await stored(env)
    await env.service.delete(ALICE, media.id)
    page = await env.auditor.entries(ALICE, media.id, first=None, after=None)
    assert [(e.action, e.actor, e.at) for e in page.entries] == [("DELETED", "alice", NOW)]
    assert (await env.auditor.entries(ADMIN, media.id, first=None, after=None)).entries == page.entries
    with pytest.raises(NotFound):
        await env.auditor.entries(BOB, media.id, first=None, after=None)
    with pytest.raises(NotFound):
        await env.auditor.entries(ALICE, "NOSUCHMEDIA", first=None, after=None)
