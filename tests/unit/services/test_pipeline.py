"""The pipeline on real files (Pillow, the EICAR scanner, local rules) over in-memory stores."""

from __future__ import annotations

import io
import resource
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from PIL import Image

from infra.media.images import VipsImageProcessor
from infra.media.moderation import LocalRuleModerator
from infra.media.scanners import EicarScanner
from services.core.auth import Principal
from services.core.events import MediaEventType
from services.core.media import Media, MediaStatus
from services.core.pagination import CursorCodec
from services.ingest.pipeline import Job, Verdict
from services.ingest.processing import ObjectCreated, Outcome, ProcessingService
from services.library.gallery import GalleryService
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository, make_media
from tests.media_files import (
    EICAR,
    audio_only_mp4,
    corrupt_jpeg,
    heic,
    jpeg_with_gps,
    mp4,
    photo,
    png_bomb,
    png_bytes,
)
from tests.media_files import resized as resized_copy
from tests.pipeline import TEST_MAX_PIXELS, real_steps


@dataclass
class Env:
    service: ProcessingService
    repo: InMemoryMediaRepository
    blobs: InMemoryBlobStore
    bus: InMemoryEventBus

    async def process(self, data: bytes, content_type: str = "image/jpeg", **fields: object) -> Media:
        media = make_media(data, content_type=content_type)
        if fields:
            import dataclasses

            media = dataclasses.replace(media, **fields)  # type: ignore[arg-type]
        await self.repo.create(media)
        self.blobs.put(media.object_key, data, content_type)
        await self.service.handle(ObjectCreated(key=media.object_key))
        stored = await self.repo.get(media.id)
        assert stored is not None
        return stored

    def types(self, media: Media) -> list[MediaEventType]:
        return [event.type for event in self.bus.published if event.media.id == media.id]


def build(steps_wrapper: object = None) -> Env:
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore(chunk_size=4096)
    bus = InMemoryEventBus(repo.outbox)
    steps = real_steps(repo, blobs, moderator=LocalRuleModerator(blocked_terms=["forbidden"]))
    service = ProcessingService(repo, blobs, bus, upload_prefix="uploads/", steps=steps)
    return Env(service, repo, blobs, bus)


@pytest.fixture
def env() -> Env:
    return build()


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_a_jpeg_with_gps_exif_is_delivered_without_any_location(env: Env) -> None:
    data = jpeg_with_gps(640, 480, orientation=6)
    assert opened(data).getexif().get_ifd(0x8825)  # the original does carry GPS

    media = await env.process(data)

    assert media.status is MediaStatus.COMPLETED
    assert {variant.name for variant in media.variants} == {"display", "thumb-large", "thumb-small"}
    for variant in media.variants:
        assert variant.key.startswith(f"derived/{media.id}/")
        image = opened(env.blobs.get(variant.key))
        assert image.format == "WEBP"
        assert "exif" not in image.info and "xmp" not in image.info
        exif = image.getexif()
        assert len(exif) == 0 and not exif.get_ifd(0x8825)
        # Orientation 6 applied to the pixels: the landscape sensor image is delivered upright.
        assert image.height > image.width
        assert (image.width, image.height) == (variant.width, variant.height)
    assert (media.width, media.height) == (480, 640)
    small, large = media.variant("thumb-small"), media.variant("thumb-large")
    assert small is not None and large is not None
    assert max(small.width, small.height) == 160 and max(large.width, large.height) == 640
    assert media.blurhash is not None and len(media.blurhash) >= 6
    assert media.phash is not None and len(media.phash) == 16


async def test_url_serves_the_sanitised_variant_never_the_original(env: Env) -> None:
    media = await env.process(jpeg_with_gps())
    gallery = GalleryService(env.repo, env.blobs, env.bus, CursorCodec(b"k" * 32))
    url = await gallery.url_for(Principal(media.owner_id), media)

    assert url is not None and f"derived/{media.id}/display.webp" in url
    assert media.object_key not in url


async def test_png_declared_as_jpeg_is_rejected(env: Env) -> None:
    media = await env.process(png_bytes(3000), content_type="image/jpeg")

    assert media.status is MediaStatus.REJECTED
    assert media.reject_reason == "type mismatch: declared image/jpeg, content is image/png"
    assert media.variants == ()
    assert env.types(media) == [MediaEventType.PROCESSING, MediaEventType.REJECTED]


@pytest.mark.parametrize(
    ("suffix", "reason"),
    [
        pytest.param(b"PK\x03\x04" + b"\x00" * 40 + b"PK\x05\x06" + b"\x00" * 18, "data after", id="zip"),
        pytest.param(b"<script>alert(1)</script>", "markup", id="html"),
    ],
)
async def test_polyglots_are_rejected(env: Env, suffix: bytes, reason: str) -> None:
    media = await env.process(photo() + suffix)

    assert media.status is MediaStatus.REJECTED
    assert media.reject_reason is not None and "polyglot" in media.reject_reason
    assert reason in media.reject_reason


async def test_a_decompression_bomb_is_rejected_without_exhausting_memory(env: Env) -> None:
    bomb = png_bomb(30_000)  # ~110 KB on disk, 900 megapixels when decoded
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    media = await env.process(bomb, content_type="image/png")

    assert media.status is MediaStatus.REJECTED
    assert media.reject_reason is not None and "decompression bomb" in media.reject_reason
    # Decoding would have needed ~900 MB (Pillow keeps a byte per 1-bit pixel).
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024
    assert grown_mib < 200


async def test_a_corrupt_image_is_rejected(env: Env) -> None:
    media = await env.process(corrupt_jpeg())

    assert media.status is MediaStatus.REJECTED
    assert media.reject_reason is not None and "corrupt" in media.reject_reason


@pytest.mark.parametrize(
    "data", [pytest.param(EICAR, id="bare-eicar"), pytest.param(photo() + EICAR, id="eicar-in-a-jpeg")]
)
async def test_the_eicar_file_is_quarantined_moved_and_never_served(env: Env, data: bytes) -> None:
    media = await env.process(data)

    assert media.status is MediaStatus.QUARANTINED
    assert media.quarantine_kind == "malware"
    assert media.reject_reason == "malware found: Eicar-Test-Signature"
    assert media.object_key == f"quarantine/{media.id}"
    assert env.blobs.stored_keys() == {f"quarantine/{media.id}"}  # nothing under uploads/ or derived/
    assert env.blobs.get(media.object_key) == data  # kept for review
    assert env.types(media) == [MediaEventType.PROCESSING, MediaEventType.QUARANTINED]
    gallery = GalleryService(env.repo, env.blobs, env.bus, CursorCodec(b"k" * 32))
    assert await gallery.url_for(Principal(media.owner_id), media) is None
    assert await gallery.url_for(Principal("admin", frozenset({"admin"})), media) is None


async def test_a_resized_copy_is_flagged_as_a_near_duplicate(env: Env) -> None:
    original = await env.process(photo(480, 360, seed=3))
    resized = await env.process(resized_copy(photo(480, 360, seed=3), 0.9))
    other = await env.process(photo(480, 360, seed=4))

    assert original.duplicate_of is None
    assert resized.status is MediaStatus.COMPLETED
    assert resized.duplicate_of == original.id
    assert other.duplicate_of is None


async def test_near_duplicates_are_looked_for_only_among_the_owners_media(env: Env) -> None:
    theirs = await env.process(photo(seed=5), owner_id="bob")
    mine = await env.process(photo(seed=5))

    assert theirs.status is mine.status is MediaStatus.COMPLETED
    assert mine.duplicate_of is None


async def test_flagged_by_moderation_is_quarantined_with_its_variants_ready(env: Env) -> None:
    media = await env.process(photo(), title="something forbidden here")

    assert media.status is MediaStatus.QUARANTINED
    assert media.quarantine_kind == "moderation"
    assert media.reject_reason == "held for review: term:forbidden"
    assert media.object_key == f"uploads/{media.id}"  # only malware is moved
    assert media.variant("display") is not None  # a release serves them at once


class CrashOnce:
    """A step that kills the worker once, after the derivatives were written."""

    name = "crash"

    def __init__(self) -> None:
        self.crashed = False

    async def run(self, job: Job) -> Verdict | None:
        if not self.crashed:
            self.crashed = True
            raise KeyboardInterrupt  # not an Exception: nothing on the way may swallow it
        return None


async def test_a_worker_killed_after_derivatives_completes_once_on_redelivery() -> None:
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore()
    bus = InMemoryEventBus(repo.outbox)
    steps = real_steps(repo, blobs)
    crash = CrashOnce()
    derive_at = next(index for index, step in enumerate(steps) if step.name == "derive")
    steps = (*steps[: derive_at + 1], crash, *steps[derive_at + 1 :])
    service = ProcessingService(repo, blobs, bus, upload_prefix="uploads/", steps=steps)
    data = jpeg_with_gps()
    media = make_media(data)
    await repo.create(media)
    blobs.put(media.object_key, data, "image/jpeg")

    with pytest.raises(KeyboardInterrupt):
        await service.handle(ObjectCreated(key=media.object_key))
    halfway = await repo.get(media.id)
    assert halfway is not None and halfway.status is MediaStatus.PROCESSING
    written = {key: blobs.get(key) for key in blobs.stored_keys() if key.startswith("derived/")}
    assert len(written) == 3

    assert await service.handle(ObjectCreated(key=media.object_key)) is Outcome.COMPLETED
    assert await service.handle(ObjectCreated(key=media.object_key)) is Outcome.DUPLICATE

    done = await repo.get(media.id)
    assert done is not None and done.status is MediaStatus.COMPLETED
    assert {key: blobs.get(key) for key in written} == written  # the same files, rewritten
    assert [event.type for event in bus.published] == [MediaEventType.PROCESSING, MediaEventType.COMPLETED]


async def test_a_heic_photo_is_decoded_and_gets_webp_variants(env: Env) -> None:
    media = await env.process(heic(320, 240), content_type="image/heic")

    assert media.status is MediaStatus.COMPLETED, media.reject_reason
    assert (media.width, media.height) == (320, 240)
    display = media.variant("display")
    assert display is not None and opened(env.blobs.get(display.key)).format == "WEBP"


@pytest.fixture
def video_env() -> Env:
    from infra.media.video import FfmpegVideoProber
    from services.ingest.pipeline import default_steps

    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore(chunk_size=65536)

    bus = InMemoryEventBus(repo.outbox)
    steps = default_steps(
        repo=repo,
        blobs=blobs,
        images=VipsImageProcessor(max_pixels=TEST_MAX_PIXELS),
        scanners=[EicarScanner()],
        moderator=LocalRuleModerator(),
        derived_prefix="derived/",
        video=FfmpegVideoProber(max_pixels=TEST_MAX_PIXELS),
    )
    return Env(ProcessingService(repo, blobs, bus, upload_prefix="uploads/", steps=steps), repo, blobs, bus)


async def test_a_video_gets_its_size_duration_and_a_poster_frame(video_env: Env) -> None:
    media = await video_env.process(mp4(seconds=2), content_type="video/mp4")

    assert media.status is MediaStatus.COMPLETED, media.reject_reason
    assert (media.width, media.height, media.duration_ms) == (320, 240, 2000)
    assert {variant.name for variant in media.variants} == {"poster", "thumb-large", "thumb-small"}
    poster = media.variant("poster")
    assert poster is not None and opened(video_env.blobs.get(poster.key)).size == (320, 240)
    gallery = GalleryService(video_env.repo, video_env.blobs, video_env.bus, CursorCodec(b"k" * 32))
    url = await gallery.url_for(Principal(media.owner_id), media)
    assert url is not None and media.object_key in url  # the video itself, not its poster


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(lambda: audio_only_mp4(), "no video stream", id="audio-only"),
        pytest.param(lambda: mp4()[:64] + b"\x00" * 4000, "corrupt", id="truncated"),
    ],
)
async def test_an_mp4_without_a_playable_video_is_rejected(
    video_env: Env, data: Callable[[], bytes], reason: str
) -> None:
    media = await video_env.process(data(), content_type="video/mp4")

    assert media.status is MediaStatus.REJECTED
    assert media.reject_reason is not None and reason in media.reject_reason
