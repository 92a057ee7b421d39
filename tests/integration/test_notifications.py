"""Completion notifications: an HMAC-signed webhook against a local receiver, and an SNS topic
on moto delivering to an SQS queue. Both once per completion, retried when they fail."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import pytest

from infra.media.notifications import NotificationFailed, SnsNotifier, WebhookNotifier
from infra.roots.runtime import Runtime
from services.core.events import MediaEventType
from services.core.media import MediaStatus
from services.ingest.processing import ObjectCreated, ProcessingService
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository, make_media
from tests.media_files import photo
from tests.pipeline import real_steps

pytestmark = pytest.mark.integration
SECRET = b"webhook-secret-that-is-long-enough-0123456789"


class Receiver:
    def __init__(self) -> None:
        self.statuses: list[int] = []  # answers to give, in order; 200 once they run out
        self.requests: list[tuple[dict[str, str], bytes]] = []


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers), body))
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", state
    server.shutdown()
    server.server_close()


def verify(headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does with the signature header."""
    fields = dict(part.split("=", 1) for part in headers["X-Mediagraph-Signature"].split(","))
    expected = hmac.new(SECRET, f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


async def completes(
    service: ProcessingService, repo: InMemoryMediaRepository, blobs: InMemoryBlobStore
) -> str:
    data = photo()
    media = make_media(data)
    await repo.create(media)
    blobs.put(media.object_key, data, "image/jpeg")
    await service.handle(ObjectCreated(key=media.object_key))
    return media.id


async def test_webhook_is_signed_retried_and_sent_once(
    runtime: Runtime, receiver: tuple[str, Receiver]
) -> None:
    url, state = receiver
    state.statuses = [503, 502]  # the receiver is down for two attempts
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore()
    bus = InMemoryEventBus(repo.outbox)
    async with aiohttp.ClientSession() as http:
        webhook = WebhookNotifier(
            http, url, SECRET, runtime.redis, prefix=runtime.settings.redis_prefix, backoff_s=0.01
        )
        service = ProcessingService(
            repo, blobs, bus, upload_prefix="uploads/", steps=real_steps(repo, blobs), notifiers=[webhook]
        )
        media_id = await completes(service, repo, blobs)
        # A redelivered S3 event announces again; the webhook remembers it delivered.
        await service.handle(ObjectCreated(key=f"uploads/{media_id}"))

    assert len(state.requests) == 3
    for headers, body in state.requests:
        assert verify(headers, body)
        assert headers["X-Mediagraph-Event-Id"] == f"{media_id}:COMPLETED"
    sent = json.loads(state.requests[-1][1])
    assert sent["type"] == "COMPLETED" and sent["media"]["id"] == media_id
    assert not verify(state.requests[0][0], state.requests[0][1] + b" ")  # tampering shows


async def test_a_webhook_down_for_good_fails_the_message_and_a_redelivery_sends_it(
    runtime: Runtime, receiver: tuple[str, Receiver]
) -> None:
    url, state = receiver
    state.statuses = [500] * 3
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore()
    bus = InMemoryEventBus(repo.outbox)
    async with aiohttp.ClientSession() as http:
        webhook = WebhookNotifier(
            http, url, SECRET, runtime.redis, prefix=runtime.settings.redis_prefix, attempts=3, backoff_s=0.01
        )
        service = ProcessingService(
            repo, blobs, bus, upload_prefix="uploads/", steps=real_steps(repo, blobs), notifiers=[webhook]
        )
        with pytest.raises(NotificationFailed):
            await completes(service, repo, blobs)
        (media,) = repo.all()
        assert media.status is MediaStatus.COMPLETED
        await service.handle(ObjectCreated(key=media.object_key))  # SQS redelivers

    assert len(state.requests) == 4
    assert [event.type for event in bus.published] == [MediaEventType.PROCESSING, MediaEventType.COMPLETED]


async def test_sns_topic_receives_each_completion_once(runtime: Runtime) -> None:
    from contextlib import AsyncExitStack

    import aioboto3

    settings = runtime.settings
    async with AsyncExitStack() as stack:
        session = aioboto3.Session(region_name=settings.aws_region)
        sns = await stack.enter_async_context(session.client("sns", endpoint_url=settings.aws_endpoint_url))
        sqs = runtime.clients.sqs
        topic = (await sns.create_topic(Name=f"{settings.queue}-completed"))["TopicArn"]
        queue_url = (await sqs.create_queue(QueueName=f"{settings.queue}-sns"))["QueueUrl"]
        queue_arn = (await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore()
        bus = InMemoryEventBus(repo.outbox)
        notifier = SnsNotifier(sns, topic, runtime.redis, prefix=settings.redis_prefix)
        service = ProcessingService(
            repo, blobs, bus, upload_prefix="uploads/", steps=real_steps(repo, blobs), notifiers=[notifier]
        )
        media_id = await completes(service, repo, blobs)
        await service.handle(ObjectCreated(key=f"uploads/{media_id}"))

        received = await sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    messages = received.get("Messages", [])
    assert len(messages) == 1
    envelope = json.loads(messages[0]["Body"])
    assert json.loads(envelope["Message"])["media"]["id"] == media_id
