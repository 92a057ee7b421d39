"""The retention window, through the public API with a zero-day window (a setting): once it is
over, restore answers CONFLICT and the worker's periodic purge removes the media for good."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from infra.aws.sqs_worker import SqsWorker
from infra.roots.runtime import Runtime
from infra.roots.scheduler import Scheduler
from infra.roots.worker import worker_jobs
from infra.settings import Settings
from tests.client import error_codes, gql
from tests.conftest import isolated_settings
from tests.e2e.test_listing import seed

pytestmark = pytest.mark.e2e

DELETE = "mutation($id: ID!) { deleteMedia(id: $id) { status deletedAt purgeAfter } }"
RESTORE = "mutation($id: ID!) { restoreMedia(id: $id) { status } }"
AUDIT = "query($id: ID!) { mediaAuditLog(id: $id) { edges { node { action actor } } } }"


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_url, retention_days=0, purge_every_s=0.2)


async def test_restore_after_the_window_is_a_conflict(
    api: str, runtime: Runtime, token: Callable[..., str]
) -> None:
    alice = token("alice")
    media = await seed(runtime, "alice")
    body = await gql(api, DELETE, {"id": media.id}, token=alice)
    assert body["data"]["deleteMedia"]["purgeAfter"] == body["data"]["deleteMedia"]["deletedAt"]
    assert error_codes(await gql(api, RESTORE, {"id": media.id}, token=alice)) == ["CONFLICT"]
    stored = await runtime.repo.get(media.id)
    assert stored is not None and stored.status.value == "DELETED"


async def test_the_worker_purges_periodically(
    api: str, runtime: Runtime, settings: Settings, resources: object, token: Callable[..., str]
) -> None:
    alice = token("alice")
    media = await seed(runtime, "alice")
    assert "errors" not in await gql(api, DELETE, {"id": media.id}, token=alice)
    queue_url = (await runtime.clients.sqs.get_queue_url(QueueName=settings.queue))["QueueUrl"]
    worker = SqsWorker(runtime.clients.sqs, queue_url, runtime.processing, wait_s=0)
    # The worker process's own jobs, run by its scheduler (infra/roots/worker.py).
    async with Scheduler(worker_jobs(runtime, worker)):
        for _ in range(200):
            if await runtime.repo.get(media.id) is None:
                break
            await asyncio.sleep(0.05)
    assert await runtime.repo.get(media.id) is None
    body = await gql(api, AUDIT, {"id": media.id}, token=alice)
    assert [edge["node"]["action"] for edge in body["data"]["mediaAuditLog"]["edges"]] == [
        "DELETED",
        "PURGED",
    ]
