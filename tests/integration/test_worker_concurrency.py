"""Worker concurrency against moto's S3 → SQS and the real Redis: many uploads at once are all
COMPLETED exactly once, and decoding stays within the memory budget the whole time."""

from __future__ import annotations

import asyncio
import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.aws.resources import Resources
from infra.aws.sqs_worker import SqsWorker
from infra.media.budget import DecodeBudget
from infra.media.images import VipsImageProcessor
from infra.roots.runtime import Runtime
from services.core.auth import Principal
from services.core.events import MediaEventType
from services.core.media import MediaStatus
from services.ingest.processing import ProcessingService
from services.ingest.uploads import UploadRequest
from tests.media_files import photo_image
from tests.pipeline import real_steps
from tests.servers import eventually
from tests.streams import stream_events

pytestmark = pytest.mark.integration

UPLOADS = 12


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


async def test_uploads_at_once_complete_exactly_once_within_the_decoding_budget(
    runtime: Runtime, resources: Resources, tmp_path: Path
) -> None:
    # Photos of 3000x2000 as PNG (no shrink-on-load: the full bitmap counts), each of its own bytes.
    photos = []
    for seed in range(UPLOADS):
        buffer = io.BytesIO()
        photo_image(3000, 2000, seed=seed).save(buffer, "PNG", compress_level=1)
        photos.append(buffer.getvalue())
    (tmp_path / "probe").write_bytes(photos[0])
    one = VipsImageProcessor(max_pixels=50_000_000).plan(str(tmp_path / "probe")).cost_bytes
    budget = DecodeBudget(one * 5 // 2)  # two decodes at once, never three
    with ThreadPoolExecutor(4, thread_name_prefix="test-image") as executor:
        images = VipsImageProcessor(max_pixels=50_000_000, budget=budget, executor=executor)
        processing = ProcessingService(
            runtime.repo,
            runtime.blobs,
            runtime.bus,
            upload_prefix=runtime.settings.upload_prefix,
            steps=real_steps(runtime.repo, runtime.blobs, images=images),
        )
        worker = SqsWorker(
            runtime.clients.sqs,
            resources.queue_url,
            processing,
            wait_s=1,
            retry_base_s=0,
            concurrency=UPLOADS,
        )
        ids = []
        for data in photos:
            ticket = await runtime.uploads.create_upload(
                Principal("alice"),
                UploadRequest("p.png", "image/png", len(data), hashlib.sha256(data).hexdigest()),
            )
            key = ticket.media.object_key
            await runtime.clients.s3.put_object(
                Bucket=runtime.settings.bucket, Key=key, Body=data, ContentType="image/png"
            )
            ids.append(ticket.media.id)
        del photos
        # The peak resident size from here on (Linux: "5" resets VmHWM to the current VmRSS).
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        start_kib = _rss_kib("VmRSS")
        most_in_hand = 0

        async def all_completed() -> bool:
            nonlocal most_in_hand
            most_in_hand = max(most_in_hand, worker.in_hand)
            found = await asyncio.gather(*(runtime.repo.get(media_id) for media_id in ids))
            return all(m is not None and m.status is MediaStatus.COMPLETED for m in found)

        task = asyncio.create_task(worker.run())
        try:
            await eventually(all_completed, timeout=180)
        finally:
            worker.stop()
            await asyncio.wait_for(task, timeout=30)
        grown_mib = (_rss_kib("VmHWM") - start_kib) / 1024

    events = await stream_events(runtime.redis, runtime.bus.stream_key("alice"))
    completed = [e.media.id for e in events if e.type is MediaEventType.COMPLETED]
    assert sorted(completed) == sorted(ids)  # every upload, each exactly once
    assert most_in_hand > 2  # messages were in hand together...
    assert budget.waits > 0  # ...and their decodes queued for room
    assert budget.high_water_bytes <= budget.limit_bytes
    # What the process really held at its peak, beyond the start: the decodes (at most the
    # budget) and the messages' own buffers (1 MiB download chunks, clients): 64 MiB of slack.
    assert grown_mib <= budget.limit_bytes / 2**20 + 64, (grown_mib, budget.limit_bytes / 2**20)
