"""A worker that dies mid-pipeline, against moto's S3 → SQS and the real Redis: the message
comes back, the pipeline runs again, and the owner hears of the completion exactly once."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from infra.aws.resources import Resources
from infra.aws.sqs_worker import SqsWorker
from infra.roots.runtime import Runtime
from services.core.auth import Principal
from services.core.events import MediaEventType
from services.core.media import MediaStatus
from services.ingest.pipeline import Job, Verdict
from services.ingest.processing import ProcessingService
from services.ingest.uploads import UploadRequest
from tests.media_files import jpeg_with_gps
from tests.pipeline import real_steps
from tests.streams import stream_events

pytestmark = pytest.mark.integration


class DieAfterDerivatives:
    """Fails the first run after the derivatives were written, as a killed worker would."""

    name = "die"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, job: Job) -> Verdict | None:
        self.runs += 1
        if self.runs == 1:
            raise ConnectionResetError("worker killed")
        return None


async def test_a_worker_dying_after_derivatives_completes_once_on_redelivery(
    runtime: Runtime, resources: Resources
) -> None:
    steps = real_steps(runtime.repo, runtime.blobs)
    die = DieAfterDerivatives()
    at = next(index for index, step in enumerate(steps) if step.name == "derive") + 1
    processing = ProcessingService(
        runtime.repo,
        runtime.blobs,
        runtime.bus,
        upload_prefix=runtime.settings.upload_prefix,
        steps=(*steps[:at], die, *steps[at:]),
    )
    worker = SqsWorker(runtime.clients.sqs, resources.queue_url, processing, wait_s=1, retry_base_s=0)
    data = jpeg_with_gps()
    ticket = await runtime.uploads.create_upload(
        Principal("alice"),
        UploadRequest("a.jpg", "image/jpeg", len(data), hashlib.sha256(data).hexdigest()),
    )
    media_id = ticket.media.id
    await runtime.clients.s3.put_object(
        Bucket=runtime.settings.bucket, Key=ticket.media.object_key, Body=data, ContentType="image/jpeg"
    )
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(300):
            media = await runtime.repo.get(media_id)
            if media is not None and media.status is MediaStatus.COMPLETED:
                break
            await asyncio.sleep(0.1)
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=15)

    # The first run died and a later one finished. Delivery is at least once: on a busy machine SQS may
    # hand the message out again while it is held, so the step may run more than twice; what must hold
    # is one COMPLETED, the derivatives once, and each event once (below).
    assert die.runs >= 2
    assert media is not None and media.status is MediaStatus.COMPLETED
    listing = await runtime.clients.s3.list_objects_v2(
        Bucket=runtime.settings.bucket, Prefix=f"derived/{media_id}/"
    )
    assert sorted(item["Key"] for item in listing["Contents"]) == sorted(v.key for v in media.variants)
    types = [event.type for event in await stream_events(runtime.redis, runtime.bus.stream_key("alice"))]
    assert types == [MediaEventType.CREATED, MediaEventType.PROCESSING, MediaEventType.COMPLETED]
