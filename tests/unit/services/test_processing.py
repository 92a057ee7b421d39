"""ProcessingService: an S3 notice decides COMPLETED or REJECTED once, and says so once."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from infra.media.images import VipsImageProcessor
from services.core.events import MediaEvent, MediaEventType
from services.core.media import Media, MediaStatus, utcnow
from services.core.ports import BlobStream
from services.ingest.inspection import Derived
from services.ingest.processing import ObjectCreated, Outcome, ProcessingService
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository, make_media
from tests.media_files import jpeg_bytes, photo, png_bytes, resized
from tests.pipeline import TEST_MAX_PIXELS, real_steps


@dataclass
class Env:
    service: ProcessingService
    repo: InMemoryMediaRepository
    blobs: InMemoryBlobStore
    bus: InMemoryEventBus

    async def pending(self, data: bytes, content_type: str = "image/jpeg") -> Media:
        media = make_media(data, content_type=content_type)
        await self.repo.create(media)
        return media

    async def stored(self, media: Media) -> Media:
        current = await self.repo.get(media.id)
        assert current is not None
        return current

    def events(self) -> list[tuple[MediaEventType, str]]:
        """Outcome events (the PROCESSING ones are checked where they matter)."""
        return [
            (event.type, event.media.id)
            for event in self.bus.published
            if event.type is not MediaEventType.PROCESSING
        ]


@pytest.fixture
def env() -> Env:
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore(chunk_size=1000)
    bus = InMemoryEventBus(repo.outbox)
    service = ProcessingService(repo, blobs, bus, upload_prefix="uploads/", steps=real_steps(repo, blobs))
    return Env(service, repo, blobs, bus)


def notice(media: Media) -> ObjectCreated:
    return ObjectCreated(key=media.object_key, size=media.size)


async def test_the_declared_bytes_complete_the_upload(env: Env) -> None:
    data = jpeg_bytes(5000)
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")

    assert await env.service.handle(notice(media)) is Outcome.COMPLETED

    done = await env.stored(media)
    assert done.status is MediaStatus.COMPLETED
    assert done.expires_at is None
    assert done.completed_at is not None
    assert done.reject_reason is None
    assert done.version == media.version + 2  # PENDING → PROCESSING → COMPLETED
    assert [event.type for event in env.bus.published] == [
        MediaEventType.PROCESSING,
        MediaEventType.COMPLETED,
    ]
    assert env.bus.published[1].media == done
    assert env.bus.published[1].event_id != ""


async def test_an_object_stored_without_a_content_type_is_judged_by_its_bytes(env: Env) -> None:
    data = jpeg_bytes(1000)
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, None)

    assert await env.service.handle(notice(media)) is Outcome.COMPLETED


@pytest.mark.parametrize(
    ("arrived", "content_type", "reason"),
    [
        pytest.param(
            lambda d: jpeg_bytes(len(d)), "image/jpeg", "checksum mismatch", id="other-bytes-same-size"
        ),
        pytest.param(lambda d: d + b"\x00", "image/jpeg", "size mismatch", id="one-byte-more"),
        pytest.param(lambda d: d[:-1], "image/jpeg", "size mismatch", id="one-byte-less"),
        pytest.param(lambda d: d, "image/png", "type mismatch", id="stored-as-another-type"),
    ],
)
async def test_bytes_other_than_the_declared_ones_are_rejected(
    env: Env, arrived: Callable[[bytes], bytes], content_type: str, reason: str
) -> None:
    data = jpeg_bytes(4096)
    media = await env.pending(data)
    sent = arrived(data)
    env.blobs.put(media.object_key, sent, content_type)

    assert await env.service.handle(notice(media)) is Outcome.REJECTED

    rejected = await env.stored(media)
    assert rejected.status is MediaStatus.REJECTED
    assert rejected.reject_reason is not None and reason in rejected.reject_reason
    assert rejected.expires_at is None
    assert env.events() == [(MediaEventType.REJECTED, media.id)]
    assert env.bus.published[-1].media.reject_reason == rejected.reject_reason


async def test_png_bytes_declared_as_jpeg_are_rejected_even_with_the_right_checksum(env: Env) -> None:
    data = png_bytes(2048)
    media = await env.pending(data, content_type="image/jpeg")  # sha256 and size of these very bytes
    env.blobs.put(media.object_key, data, "image/jpeg")

    assert await env.service.handle(notice(media)) is Outcome.REJECTED

    rejected = await env.stored(media)
    assert rejected.reject_reason == "type mismatch: declared image/jpeg, content is image/png"
    assert env.events() == [(MediaEventType.REJECTED, media.id)]


async def test_a_missing_object_is_rejected(env: Env) -> None:
    media = await env.pending(jpeg_bytes(100))

    assert await env.service.handle(notice(media)) is Outcome.REJECTED

    rejected = await env.stored(media)
    assert rejected.status is MediaStatus.REJECTED
    assert rejected.reject_reason == "object missing"
    assert env.events() == [(MediaEventType.REJECTED, media.id)]


async def test_the_same_notice_twice_is_processed_once(env: Env) -> None:
    data = jpeg_bytes()
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")

    assert await env.service.handle(notice(media)) is Outcome.COMPLETED
    after_first = await env.stored(media)
    assert await env.service.handle(notice(media)) is Outcome.DUPLICATE

    assert await env.stored(media) == after_first
    assert env.events() == [(MediaEventType.COMPLETED, media.id)]


async def test_a_late_notice_with_other_bytes_does_not_overturn_a_completion(env: Env) -> None:
    data = jpeg_bytes()
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")
    await env.service.handle(notice(media))

    env.blobs.put(media.object_key, png_bytes(), "image/png")

    assert await env.service.handle(notice(media)) is Outcome.DUPLICATE
    assert (await env.stored(media)).status is MediaStatus.COMPLETED
    assert env.events() == [(MediaEventType.COMPLETED, media.id)]


async def test_a_repeated_rejection_is_announced_once(env: Env) -> None:
    media = await env.pending(jpeg_bytes(100))

    assert await env.service.handle(notice(media)) is Outcome.REJECTED
    assert await env.service.handle(notice(media)) is Outcome.DUPLICATE

    assert env.events() == [(MediaEventType.REJECTED, media.id)]


async def test_two_notices_handled_concurrently_complete_once(env: Env) -> None:
    # Two multipart events (Put and CompleteMultipartUpload) for one object, in two workers.
    data = jpeg_bytes(10_000)
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")

    outcomes = await asyncio.gather(env.service.handle(notice(media)), env.service.handle(notice(media)))

    assert sorted(outcomes) == sorted([Outcome.COMPLETED, Outcome.DUPLICATE])
    assert (await env.stored(media)).version == media.version + 2
    assert env.events() == [(MediaEventType.COMPLETED, media.id)]


async def test_the_download_runs_beside_the_start_and_leaves_no_files_either_way(tmp_path: Path) -> None:
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore(chunk_size=1000)
    bus = InMemoryEventBus(repo.outbox)
    steps = real_steps(repo, blobs)
    service = ProcessingService(
        repo, blobs, bus, upload_prefix="uploads/", steps=steps, workdir=str(tmp_path)
    )
    env = Env(service, repo, blobs, bus)
    data = jpeg_bytes(10_000)
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")

    # One notice completes; the other loses the race for PROCESSING or for the end and stops
    # early, its download unused.
    outcomes = await asyncio.gather(env.service.handle(notice(media)), env.service.handle(notice(media)))

    assert sorted(outcomes) == sorted([Outcome.COMPLETED, Outcome.DUPLICATE])
    assert list(tmp_path.iterdir()) == []  # no work directory left behind
    assert env.blobs.opened == env.blobs.closed


async def test_a_crash_between_save_and_publish_is_mended_by_the_redelivery(env: Env) -> None:
    data = jpeg_bytes()
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")
    publish = env.bus.publish

    async def fail_on_completion(event: MediaEvent) -> str | None:
        if event.type is MediaEventType.COMPLETED and env.bus.fail_next_publish is None:
            env.bus.fail_next_publish = ConnectionError("redis went away")
        return await publish(event)

    env.bus.publish = fail_on_completion  # type: ignore[method-assign]  # a crash at one point

    with pytest.raises(ConnectionError):
        await env.service.handle(notice(media))
    assert (await env.stored(media)).status is MediaStatus.COMPLETED
    assert env.events() == []
    env.bus.publish = publish  # type: ignore[method-assign]

    assert await env.service.handle(notice(media)) is Outcome.DUPLICATE
    assert await env.service.handle(notice(media)) is Outcome.DUPLICATE

    assert env.events() == [(MediaEventType.COMPLETED, media.id)]
    assert env.bus.published[-1].media == await env.stored(media)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("other/{id}", id="outside-prefix"),
        pytest.param("uploads", id="prefix-without-slash"),
        pytest.param("uploads/", id="prefix-only"),
        pytest.param("uploads/{id}/thumb.jpg", id="nested"),
        pytest.param("uploads/01JUNKNOWN0000000000000000", id="unknown-id"),
        pytest.param("xuploads/{id}", id="prefix-not-at-start"),
    ],
)
async def test_keys_that_are_not_our_uploads_are_ignored(env: Env, key: str) -> None:
    data = jpeg_bytes()
    media = await env.pending(data)
    key = key.format(id=media.id)
    env.blobs.put(key, data, "image/jpeg")

    assert await env.service.handle(ObjectCreated(key=key)) is Outcome.IGNORED

    assert await env.stored(media) == media
    assert env.events() == []


async def test_a_notice_for_a_deleted_record_is_ignored(env: Env) -> None:
    data = jpeg_bytes()
    media = make_media(data, status=MediaStatus.DELETED)
    await env.repo.create(media)
    env.blobs.put(media.object_key, data, "image/jpeg")

    assert await env.service.handle(notice(media)) is Outcome.IGNORED
    assert await env.stored(media) == media
    assert env.events() == []


async def test_sweep_removes_expired_pending_uploads_and_their_objects(env: Env) -> None:
    now = utcnow()
    expired = make_media(b"abandoned", created_at=now - timedelta(days=2), expires_at=now - timedelta(days=1))
    also_expired = make_media(
        b"abandoned too", created_at=now - timedelta(days=1), expires_at=now - timedelta(seconds=1)
    )
    fresh = make_media(b"in flight", created_at=now - timedelta(minutes=5))
    completed = make_media(b"done", status=MediaStatus.COMPLETED, created_at=now - timedelta(days=3))
    for media in (expired, also_expired, fresh, completed):
        await env.repo.create(media)
        env.blobs.put(media.object_key, b"partial", "image/jpeg")

    assert await env.service.sweep_expired() == 2

    assert await env.repo.get(expired.id) is None
    assert await env.repo.get(also_expired.id) is None
    assert await env.repo.get(fresh.id) == fresh
    assert await env.repo.get(completed.id) == completed
    assert env.blobs.stored_keys() == {fresh.object_key, completed.object_key}
    assert await env.service.sweep_expired() == 0


async def test_sweep_spares_an_upload_that_arrived_while_it_ran(env: Env) -> None:
    now = utcnow()
    media = make_media(b"late", created_at=now - timedelta(days=2), expires_at=now - timedelta(days=1))
    await env.repo.create(media)
    env.blobs.put(media.object_key, b"late", "image/jpeg")

    class RacingRepository(InMemoryMediaRepository):
        async def oldest_with_status(self, status: MediaStatus, *, limit: int) -> list[Media]:
            found = await super().oldest_with_status(status, limit=limit)
            # The worker takes the record between the sweeper's read and its delete.
            await self.save(media.transition(MediaStatus.PROCESSING, utcnow()), expected_version=1)
            return found

    repo = RacingRepository()
    await repo.create(media)
    sweeper = ProcessingService(repo, env.blobs, env.bus, upload_prefix="uploads/", steps=())

    assert await sweeper.sweep_expired() == 0
    kept = await repo.get(media.id)
    assert kept is not None and kept.status is MediaStatus.PROCESSING
    assert media.object_key in env.blobs.stored_keys()


@pytest.mark.parametrize("arrived", [b"short", None], ids=["refused-before-reading", "read-through"])
async def test_every_opened_object_is_closed(env: Env, arrived: bytes | None) -> None:
    data = jpeg_bytes(3000)
    media = await env.pending(data)
    env.blobs.put(media.object_key, arrived if arrived is not None else data, "image/jpeg")

    await env.service.handle(notice(media))

    assert env.blobs.opened == env.blobs.closed == 1


async def test_an_event_overtaken_by_a_newer_one_for_the_key_is_ignored(env: Env) -> None:
    data = jpeg_bytes()
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")

    newer = ObjectCreated(key=media.object_key, sequencer="0055AED6DCD90281E6")
    older = ObjectCreated(key=media.object_key, sequencer="0055AED6DCD90281E5")
    assert await env.service.handle(newer) is Outcome.COMPLETED
    done = await env.stored(media)
    assert done.sequencer == newer.sequencer

    assert await env.service.handle(older) is Outcome.IGNORED
    assert await env.stored(media) == done
    assert env.events() == [(MediaEventType.COMPLETED, media.id)]


def test_sequencers_compare_as_padded_hex() -> None:
    from services.ingest.processing import is_older, newest

    assert is_older("FF", "0100")  # shorter is padded, not compared as text
    assert not is_older("0100", "FF")
    assert not is_older(None, "01") and not is_older("01", None)  # moto sends none
    assert newest("0a", None, "FF", "0100") == "0100"


async def test_a_newer_event_with_the_same_bytes_changes_nothing_visible(env: Env) -> None:
    data = jpeg_bytes()
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")
    await env.service.handle(ObjectCreated(key=media.object_key, sequencer="01"))

    assert await env.service.handle(ObjectCreated(key=media.object_key, sequencer="02")) is Outcome.DUPLICATE

    stored = await env.stored(media)
    assert stored.status is MediaStatus.COMPLETED and stored.sequencer == "02"
    assert env.events() == [(MediaEventType.COMPLETED, media.id)]


async def test_an_object_replaced_after_completion_is_taken_out_of_view(env: Env) -> None:
    data = jpeg_bytes()
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")
    await env.service.handle(ObjectCreated(key=media.object_key, sequencer="01"))
    env.blobs.put(media.object_key, jpeg_bytes(len(data)), "image/jpeg")  # a second PUT

    outcome = await env.service.handle(ObjectCreated(key=media.object_key, sequencer="02"))

    assert outcome is Outcome.QUARANTINED
    stored = await env.stored(media)
    assert stored.status is MediaStatus.QUARANTINED and stored.quarantine_kind == "replaced"
    assert (
        stored.reject_reason
        == "object replaced after verification: checksum mismatch: the bytes are not the ones declared"
    )
    assert env.events() == [(MediaEventType.COMPLETED, media.id), (MediaEventType.QUARANTINED, media.id)]


async def test_the_owners_hashes_are_read_while_the_image_decodes() -> None:
    listed = asyncio.Event()

    class Repo(InMemoryMediaRepository):
        async def completed_hashes(self, owner_id: str, *, limit: int) -> list[tuple[str, str]]:
            listed.set()
            return await super().completed_hashes(owner_id, limit=limit)

    class DecodeAfterTheRead:
        def __init__(self) -> None:
            self.inner = VipsImageProcessor(max_pixels=TEST_MAX_PIXELS)

        async def derive(self, path: str, workdir: str) -> Derived:
            # Only a read started beside the decode can set this; a bound, not a measurement.
            await asyncio.wait_for(listed.wait(), 10)
            return await self.inner.derive(path, workdir)

    repo, blobs = Repo(), InMemoryBlobStore()
    steps = real_steps(repo, blobs, images=DecodeAfterTheRead())  # type: ignore[arg-type]
    service = ProcessingService(
        repo, blobs, InMemoryEventBus(repo.outbox), upload_prefix="uploads/", steps=steps
    )
    earlier = make_media(photo(seed=1), content_type="image/jpeg")
    await repo.create(earlier)
    blobs.put(earlier.object_key, photo(seed=1), "image/jpeg")
    listed.set()
    assert await service.handle(notice(earlier)) is Outcome.COMPLETED
    listed.clear()
    data = resized(photo(seed=1), 0.5)
    media = make_media(data, content_type="image/jpeg")
    await repo.create(media)
    blobs.put(media.object_key, data, "image/jpeg")

    assert await service.handle(notice(media)) is Outcome.COMPLETED

    assert (await repo.get(media.id)).duplicate_of == earlier.id  # type: ignore[union-attr]


async def test_the_object_is_asked_for_while_its_record_is_read() -> None:
    opened = asyncio.Event()

    class Blobs(InMemoryBlobStore):
        async def open(self, key: str) -> BlobStream | None:
            opened.set()
            return await super().open(key)

    class Repo(InMemoryMediaRepository):
        async def get(self, media_id: str) -> Media | None:
            # Only a GET started beside this read can set it; a bound, not a measurement.
            await asyncio.wait_for(opened.wait(), 10)
            return await super().get(media_id)

    repo, blobs = Repo(), Blobs(chunk_size=1000)
    service = ProcessingService(
        repo, blobs, InMemoryEventBus(repo.outbox), upload_prefix="uploads/", steps=real_steps(repo, blobs)
    )
    data = jpeg_bytes(5000)
    media = make_media(data, content_type="image/jpeg")
    await repo.create(media)
    blobs.put(media.object_key, data, "image/jpeg")

    assert await service.handle(notice(media)) is Outcome.COMPLETED
    assert blobs.opened == blobs.closed == 1  # one GET, taken by the download


@pytest.mark.parametrize("case", ["duplicate", "unknown", "overtaken"])
async def test_a_notice_that_ends_early_closes_the_object_it_asked_for(env: Env, case: str) -> None:
    data = jpeg_bytes(3000)
    media = await env.pending(data)
    env.blobs.put(media.object_key, data, "image/jpeg")
    assert await env.service.handle(notice(media)) is Outcome.COMPLETED
    if case == "unknown":
        await env.repo.delete(await env.stored(media))
    late = ObjectCreated(key=media.object_key, size=media.size)
    if case == "overtaken":
        stored = await env.stored(media)
        await env.repo.save(
            dataclasses.replace(stored, sequencer="00FF", version=stored.version + 1),
            expected_version=stored.version,
            previous=stored,
        )
        late = ObjectCreated(key=media.object_key, size=media.size, sequencer="0001")

    outcome = await env.service.handle(late)

    assert outcome is (Outcome.DUPLICATE if case == "duplicate" else Outcome.IGNORED)
    assert env.blobs.opened == env.blobs.closed  # every GET closed, none left open
