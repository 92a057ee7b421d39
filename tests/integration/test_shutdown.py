"""Graceful shutdown: a worker stopped in the middle of an upload loses nothing and processes it
exactly once; WebSocket clients of a stopping API are told 1001 (going away)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable

import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed

from infra.aws.embedded import free_port
from infra.aws.resources import Resources
from infra.aws.sqs_worker import SqsWorker
from infra.http.server import ApiServer, server_config
from infra.observability import metrics
from infra.roots.app import create_app
from infra.roots.runtime import Runtime
from infra.roots.worker import stop_worker
from infra.settings import Settings
from services.core.auth import Principal
from services.core.events import MediaEventType
from services.core.media import MediaStatus
from services.core.ports import BlobStream
from services.ingest.processing import ProcessingService
from services.ingest.uploads import UploadRequest
from tests.client import WsClient
from tests.media_files import jpeg_bytes
from tests.pipeline import real_steps
from tests.servers import eventually
from tests.streams import stream_events

pytestmark = pytest.mark.integration


class GatedBlobs:
    """The real S3BlobStore, whose byte stream waits at a gate: a slow download, held open."""

    def __init__(self, runtime: Runtime) -> None:
        self._blobs = runtime.blobs
        self.reading = asyncio.Event()
        self.gate = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._blobs, name)

    async def open(self, key: str) -> BlobStream | None:
        stream = await self._blobs.open(key)
        if stream is None:
            return None
        inner = stream.chunks

        async def gated() -> AsyncIterator[bytes]:
            self.reading.set()
            await self.gate.wait()
            async for chunk in inner:
                yield chunk

        return BlobStream(info=stream.info, chunks=gated(), close=stream.close)


def _processing(runtime: Runtime, blobs: object) -> ProcessingService:
    return ProcessingService(
        runtime.repo,
        blobs,  # type: ignore[arg-type]  # GatedBlobs forwards the rest of the BlobStore port
        runtime.bus,
        upload_prefix=runtime.settings.upload_prefix,
        steps=real_steps(runtime.repo, blobs),  # type: ignore[arg-type]  # as above
    )


async def _upload(runtime: Runtime) -> str:
    data = jpeg_bytes(30_000)
    ticket = await runtime.uploads.create_upload(
        Principal("alice"),
        UploadRequest(
            filename="a.jpg",
            content_type="image/jpeg",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        ),
        request_id="shutdown-test-0001",
    )
    await runtime.clients.s3.put_object(
        Bucket=runtime.settings.bucket, Key=ticket.media.object_key, Body=data, ContentType="image/jpeg"
    )
    return ticket.media.id


async def _queue_is_empty(runtime: Runtime, queue_url: str) -> bool:
    attributes: dict[str, str] = (
        await runtime.clients.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    return attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def _start(
    runtime: Runtime, resources: Resources, processing: ProcessingService
) -> tuple[SqsWorker, asyncio.Task[None]]:
    worker = SqsWorker(runtime.clients.sqs, resources.queue_url, processing, wait_s=1, retry_base_s=0)
    return worker, asyncio.create_task(worker.run())


async def _completions_announced(runtime: Runtime) -> int:
    events = await stream_events(runtime.redis, runtime.bus.stream_key("alice"))
    return sum(event.type is MediaEventType.COMPLETED for event in events)


def _completed() -> float:
    return metrics.sample("mediagraph_worker_events_total", {"outcome": "completed"})


async def test_stop_during_an_upload_lets_it_finish(runtime: Runtime, resources: Resources) -> None:
    media_id = await _upload(runtime)
    blobs = GatedBlobs(runtime)
    completed_before = _completed()
    worker, task = _start(runtime, resources, _processing(runtime, blobs))
    await asyncio.wait_for(blobs.reading.wait(), 20)

    stopping = asyncio.create_task(stop_worker(worker, task, grace_s=60))

    async def stop_requested() -> bool:
        return worker._stopping.is_set()

    await eventually(stop_requested)
    assert not stopping.done() and not task.done()  # the worker waits for the message in hand
    blobs.gate.set()
    await asyncio.wait_for(stopping, 30)

    media = await runtime.repo.get(media_id)
    assert media is not None and media.status is MediaStatus.COMPLETED
    assert await _queue_is_empty(runtime, resources.queue_url)  # deleted, not left to redeliver
    assert await _completions_announced(runtime) == 1
    assert _completed() - completed_before == 1


async def test_stop_past_the_grace_period_returns_the_message_and_a_restart_processes_it_once(
    runtime: Runtime, resources: Resources
) -> None:
    media_id = await _upload(runtime)
    blobs = GatedBlobs(runtime)  # its gate never opens: the download hangs
    completed_before, released_before = (
        _completed(),
        metrics.sample("mediagraph_worker_messages_total", {"result": "released"}),
    )
    worker, task = _start(runtime, resources, _processing(runtime, blobs))
    await asyncio.wait_for(blobs.reading.wait(), 20)

    await asyncio.wait_for(stop_worker(worker, task, grace_s=0.2), 30)
    media = await runtime.repo.get(media_id)
    # Started (PROCESSING) but not finished: the outcome is still open, the message back on the queue.
    assert media is not None and media.status is MediaStatus.PROCESSING
    assert metrics.sample("mediagraph_worker_messages_total", {"result": "released"}) - released_before == 1

    # Restarted: the message is back at once (visibility reset), and is processed exactly once.
    worker, task = _start(runtime, resources, runtime.processing)

    async def completed() -> bool:
        current = await runtime.repo.get(media_id)
        return current is not None and current.status is MediaStatus.COMPLETED

    await eventually(completed)
    await eventually(lambda: _queue_is_empty(runtime, resources.queue_url))
    await stop_worker(worker, task, grace_s=30)
    assert await _completions_announced(runtime) == 1
    assert _completed() - completed_before == 1


@pytest.mark.parametrize(
    ("server_class", "close_code"),
    [(uvicorn.Server, 1012), (ApiServer, 1001)],
    ids=["plain uvicorn says 1012", "ApiServer says 1001"],
)
async def test_websocket_clients_are_told_going_away(
    settings: Settings,
    resources: Resources,
    token: Callable[..., str],
    server_class: type[uvicorn.Server],
    close_code: int,
) -> None:
    port = free_port()
    server = server_class(
        server_config(create_app(settings), settings.server, host="127.0.0.1", port=port, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    before = _active()
    async with WsClient(base, token("alice")) as ws:
        await ws.subscribe("subscription { mediaEvents { eventId } }")

        async def subscribed() -> bool:
            return _active() == before + 1

        await eventually(subscribed)
        server.should_exit = True
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive(timeout=20)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == close_code
    await asyncio.wait_for(serving, 30)
    assert _active() == before  # the subscription ended with the connection


def _active() -> float:
    return metrics.sample("mediagraph_subscriptions_active", {"operation": "mediaEvents"})
