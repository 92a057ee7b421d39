"""Spans of an upload, exported to memory: HTTP → GraphQL operation → AWS calls in the API;
SQS message → pipeline steps → AWS and Redis calls in the worker; the same request id on both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from infra.aws.sqs_worker import SqsWorker
from infra.observability import tracing
from infra.settings import Settings
from tests.client import create_upload, gql, put_upload
from tests.media_files import jpeg_bytes
from tests.servers import eventually

pytestmark = pytest.mark.e2e

MEDIA = "query($id: ID!) { media(id: $id) { status } }"


@pytest.fixture
def spans(settings: Settings) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.enable(settings.tracing, exporter)
    yield exporter
    tracing.disable()


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span for span in spans if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, (name, sorted(span.name for span in spans))
    return found[0]


async def test_an_upload_is_traced_from_request_to_worker(
    spans: InMemorySpanExporter, api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = jpeg_bytes(20_000)
    payload = await create_upload(api, alice, data)
    assert await put_upload(payload["upload"], data) == 200
    for _ in range(200):
        body = await gql(api, MEDIA, {"id": payload["media"]["id"]}, token=alice)
        if body["data"]["media"]["status"] == "COMPLETED":
            break
        await asyncio.sleep(0.05)

    async def message_span_ended() -> bool:  # the worker deletes the message after the status change
        return any(span.name == "worker.message" for span in spans.get_finished_spans())

    await eventually(message_span_ended)
    finished = list(spans.get_finished_spans())

    # API: POST /graphql → graphql.mutation createUpload → DynamoDB.TransactWriteItems (+ the Redis publish).
    mutation = _one(finished, "graphql.mutation createUpload")
    assert mutation.parent is not None
    parent_id = mutation.parent.span_id
    http = next(span for span in finished if span.context is not None and span.context.span_id == parent_id)
    assert http.name == "POST /graphql"
    assert http.parent is None  # a root: no traceparent was sent
    api_calls = {span.name for span in _children(finished, mutation)}
    assert "DynamoDB.TransactWriteItems" in api_calls, api_calls
    request_id = http.attributes["mediagraph.request_id"]  # type: ignore[index]

    # Worker: worker.message → pipeline.load/outbox/start/verify/save/announce → their own calls.
    messages = [
        span
        for span in finished
        if span.name == "worker.message"
        and {c.name for c in _children(finished, span)} >= {"pipeline.verify"}
    ]
    assert len(messages) == 1
    message = messages[0]
    assert message.attributes is not None and message.attributes["mediagraph.request_id"] == request_id
    children = [span.name for span in _children(finished, message)]
    # The one download runs beside the PROCESSING write ("pipeline.start"), and the record's read
    # beside the outbox's: their places depend on timing, so they are checked apart from the order.
    assert children.count("S3.GetObject") == 1
    reads = {"pipeline.load", "pipeline.outbox"}  # the outbox: earlier writes' unpublished events
    in_order = [name for name in children if name != "S3.GetObject"]
    assert set(in_order[:2]) == reads
    assert in_order[2:] == [
        "pipeline.start",
        "pipeline.verify",
        "pipeline.save",
        "pipeline.announce",
        "SQS.DeleteMessage",
    ]
    steps = {span.name: span for span in _children(finished, message)}
    assert [span.name for span in _children(finished, steps["pipeline.load"])] == ["DynamoDB.GetItem"]
    assert [span.name for span in _children(finished, steps["pipeline.outbox"])] == ["DynamoDB.Query"]
    first = next(span.name for span in _children(finished, steps["pipeline.start"]))
    assert first == "DynamoDB.TransactWriteItems"
    verify_calls = [span.name for span in _children(finished, steps["pipeline.verify"])]
    assert "S3.GetObject" not in verify_calls  # the steps read the one download, not S3 again
    # The save, then the page cache's invalidation.
    first = next(span.name for span in _children(finished, steps["pipeline.save"]))
    assert first == "DynamoDB.TransactWriteItems"
    redis_calls = _children(finished, steps["pipeline.announce"])
    # The audit entry, then the publish: Redis carries the event.
    assert any(
        span.attributes is not None and span.attributes.get("db.system") == "redis" for span in redis_calls
    )
    assert message.context is not None and http.context is not None
    assert message.context.trace_id != http.context.trace_id  # two traces, linked by the request id
