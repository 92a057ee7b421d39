"""Decode bombs (issue 15): truncated images are refused before a full decode, and decoding holds
a memory budget across concurrent messages. The real decoder on files made here."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
import pyvips
from pydantic import ValidationError

from infra.media.budget import DecodeBudget
from infra.media.images import VipsImageProcessor
from infra.settings import Settings
from services.core.media import MediaStatus
from services.ingest.inspection import MediaRefused
from services.ingest.processing import ProcessingService
from tests.conftest import TEST_SECRET
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository
from tests.media_files import photo_image, png_with_missing_rows
from tests.pipeline import real_steps
from tests.unit.services.test_pipeline import Env, build


def _file(tmp_path: Path, data: bytes, name: str = "upload") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


async def test_a_tiny_png_declaring_50_megapixels_with_missing_rows_is_rejected() -> None:
    bomb = png_with_missing_rows(7050, 7050, rows=20)  # 49.7 MP declared, under the 50 MP limit
    assert len(bomb) < 600
    repo, blobs, bus = InMemoryMediaRepository(), InMemoryBlobStore(), InMemoryEventBus()
    steps = real_steps(repo, blobs, max_pixels=50_000_000)  # the shipped limit
    env = Env(ProcessingService(repo, blobs, bus, upload_prefix="uploads/", steps=steps), repo, blobs, bus)

    media = await env.process(bomb, content_type="image/png")

    assert media.status is MediaStatus.REJECTED
    assert media.reject_reason is not None and "truncated" in media.reject_reason


@pytest.mark.parametrize(
    ("data", "why"),
    [
        # Too few compressed bytes to hold the declared rows: refused by size alone.
        pytest.param(png_with_missing_rows(7050, 7050, rows=20), "cannot hold", id="by-size"),
        # Enough compressed bytes (random rows), half the rows: refused by counting them.
        pytest.param(
            png_with_missing_rows(600, 600, rows=300, noise=True), "rows are missing", id="by-count"
        ),
    ],
)
async def test_missing_png_rows_are_found_before_a_pixel_is_decoded(
    tmp_path: Path, data: bytes, why: str
) -> None:
    images = VipsImageProcessor(max_pixels=50_000_000)

    with pytest.raises(MediaRefused, match=why):
        await images.derive(_file(tmp_path, data), str(tmp_path))

    # Refused before the decode reserved its memory, so before any pixel was decoded.
    assert images.budget.high_water_bytes == 0


async def test_complete_pngs_pass_the_check_plain_and_interlaced(tmp_path: Path) -> None:
    images = VipsImageProcessor(max_pixels=50_000_000)
    plain = png_with_missing_rows(300, 200, rows=200, noise=True)
    interlaced = pyvips.Image.new_from_buffer(plain, "").pngsave_buffer(interlace=True)

    for data in (plain, interlaced):
        derived = await images.derive(_file(tmp_path, data), str(tmp_path))
        assert (derived.width, derived.height) == (300, 200)


async def test_a_truncated_jpeg_is_rejected() -> None:
    env = build()
    buffer = io.BytesIO()
    photo_image(1600, 1200, seed=3).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    cut = data[: len(data) // 2] + b"\xff\xd9"  # half the scan, then an end marker

    media = await env.process(cut)

    assert media.status is MediaStatus.REJECTED
    assert media.reject_reason is not None and "truncated" in media.reject_reason


async def test_concurrent_decodes_stay_within_the_budget(tmp_path: Path) -> None:
    png = io.BytesIO()
    photo_image(1000, 800, seed=5).save(png, "PNG")
    path = _file(tmp_path, png.getvalue())
    probe = VipsImageProcessor(max_pixels=50_000_000)
    cost = probe.plan(path).cost_bytes
    budget = DecodeBudget(cost * 5 // 2)  # room for two at once, not three
    images = VipsImageProcessor(max_pixels=50_000_000, budget=budget)
    workdirs = [tmp_path / str(i) for i in range(6)]
    for workdir in workdirs:
        workdir.mkdir()

    results = await asyncio.gather(*(images.derive(path, str(workdir)) for workdir in workdirs))

    assert all((r.width, r.height) == (1000, 800) for r in results)
    assert budget.high_water_bytes <= budget.limit_bytes
    assert budget.waits > 0  # some decodes had to wait for room
    assert budget.used_bytes == 0


async def test_an_image_needing_more_than_the_whole_budget_is_refused(tmp_path: Path) -> None:
    png = io.BytesIO()
    photo_image(1000, 800, seed=5).save(png, "PNG")
    images = VipsImageProcessor(max_pixels=50_000_000, budget=DecodeBudget(1 << 20))

    with pytest.raises(MediaRefused, match="more memory"):
        await images.derive(_file(tmp_path, png.getvalue()), str(tmp_path))


def test_a_budget_too_small_for_the_pixel_limit_is_a_configuration_error() -> None:
    with pytest.raises(ValidationError, match="MEDIAGRAPH_WORKER_DECODE_BUDGET_MB is too small"):
        Settings(_env_file=None, jwt_secret=TEST_SECRET, worker_decode_budget_mb=256)
    fits = Settings(
        _env_file=None, jwt_secret=TEST_SECRET, worker_decode_budget_mb=256, max_image_pixels=10**7
    )
    assert fits.worker_decode_budget_mb == 256
