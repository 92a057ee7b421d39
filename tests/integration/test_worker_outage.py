"""The worker through a dependency outage: a transient failure (a connection error) holds the
message in hand, its visibility renewed, and retries it without spending its receives, so it
never reaches the DLQ; a message that fails for any other reason still reaches it in seconds.
Settings: 1 s visibility timeout and 2 receives before the DLQ, so any re-receive would show."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from infra.aws.resources import Resources
from infra.aws.sqs_worker import SqsWorker
from infra.roots.runtime import Runtime
from services.core.media import MediaStatus
from services.ingest.processing import ObjectCreated, Outcome, ProcessingService
from tests.media_files import jpeg_bytes
from tests.runtime_uploads import upload_directly
from tests.servers import eventually

pytestmark = pytest.mark.integration


class Flaky:
    """The real ProcessingService behind a switch: while `failure` is set, every call raises it."""

    def __init__(self, inner: ProcessingService) -> None:
        self.inner = inner
        self.failure: Exception | None = None
        self.failed = 0

    async def handle(self, notice: ObjectCreated) -> Outcome:
        if self.failure is not None:
            self.failed += 1
            raise self.failure
        return await self.inner.handle(notice)

    async def sweep_expired(self, *, limit: int = 100) -> int:
        return 0


@pytest.fixture
async def flaky(runtime: Runtime, resources: Resources) -> AsyncIterator[Flaky]:
    processing = Flaky(runtime.processing)
    # Two workers on the queue: a message whose visibility lapsed would be taken by the other.
    workers = [
        SqsWorker(
            runtime.clients.sqs,
            resources.queue_url,
            processing,  # type: ignore[arg-type]  # the slice of ProcessingService the worker uses
            wait_s=1,
            retry_base_s=0,
            visibility_timeout_s=1,
            outage_tolerance_s=120,
            transient_backoff_max_s=0.5,
        )
        for _ in range(2)
    ]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    yield processing
    for worker in workers:
        worker.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=15)


async def _depth(runtime: Runtime, url: str) -> int:
    attributes = await runtime.clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    return sum(int(value) for value in attributes["Attributes"].values())


async def test_an_outage_longer_than_every_receive_never_dead_letters(
    runtime: Runtime, resources: Resources, flaky: Flaky
) -> None:
    flaky.failure = RedisConnectionError("Error 111 connecting to redis. Connection refused.")
    media_id = await upload_directly(runtime, jpeg_bytes())
    # Held through many retries: together far longer than 2 receives x 1 s of visibility.
    await eventually(lambda: _at_least(flaky, 12), timeout=30)
    flaky.failure = None

    async def completed() -> bool:
        media = await runtime.repo.get(media_id)
        return media is not None and media.status is MediaStatus.COMPLETED

    await eventually(completed, timeout=30)
    assert await _depth(runtime, resources.dlq_url) == 0


async def test_a_message_that_always_fails_otherwise_reaches_the_dlq_quickly(
    runtime: Runtime, resources: Resources, flaky: Flaky
) -> None:
    flaky.failure = ValueError("a bug: this message can never be processed")
    body = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "uploads/01POISON"}}}]}
    await runtime.clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps(body))

    async def dead_lettered() -> bool:
        return await _depth(runtime, resources.dlq_url) == 1

    await eventually(dead_lettered, timeout=30)


async def _at_least(flaky: Flaky, failures: int) -> bool:
    return flaky.failed >= failures
