"""What an operator sees while an upload goes through: /metrics (on its own listener) that move,
JSON log lines that carry the request id from the API into the worker, and no secret in any of
them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.aws.resources import Resources
from infra.aws.sqs_worker import SqsWorker
from infra.roots.runtime import Runtime
from tests.client import CREATE_UPLOAD, WsClient, gql, put_upload
from tests.conftest import TEST_SECRET, captured_logs
from tests.media_files import jpeg_bytes
from tests.servers import listening

pytestmark = pytest.mark.e2e

UPLOAD_COMPLETED = "subscription { uploadCompleted { mediaId status } }"


async def scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    # The test client's own request log (which must show the signature redacted) at INFO, whatever
    # an earlier test running the CLI in-process (tests/unit/test_settings_errors.py) left
    # `configure_logging`'s quieting of httpx at.
    httpx_logger = logging.getLogger("httpx")
    httpx_level = httpx_logger.level
    httpx_logger.setLevel(logging.INFO)
    try:
        with captured_logs(logging.INFO) as stream:
            yield stream
    finally:
        httpx_logger.setLevel(httpx_level)


async def _create(base: str, token: str, data: bytes) -> tuple[dict[str, Any], str]:
    import hashlib

    variables = {
        "input": {
            "filename": "photo.jpg",
            "contentType": "image/jpeg",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    }
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/graphql",
            json={"query": CREATE_UPLOAD, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["createUpload"], response.headers["x-request-id"]


async def test_metrics_move_as_an_upload_goes_through(
    api: str, worker: SqsWorker, token: Callable[..., str], metrics_url: str
) -> None:
    alice = token("alice")
    data = jpeg_bytes(20_000)
    before = await scrape(metrics_url)
    async with WsClient(api, alice) as ws:
        await ws.subscribe(UPLOAD_COMPLETED)
        await listening(api, "alice")
        during = await scrape(metrics_url)
        payload, _ = await _create(api, alice, data)
        assert await put_upload(payload["upload"], data) == 200
        message = await ws.receive(timeout=20)
        assert message["payload"]["data"]["uploadCompleted"]["status"] == "COMPLETED"
    denied = await gql(api, "{ myMedia { edges { node { id } } } }")  # no token
    assert denied["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    after = await scrape(metrics_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert (
        value(during, "mediagraph_websocket_connections")
        == value(before, "mediagraph_websocket_connections") + 1
    )
    subscription = {"operation": "uploadCompleted"}
    assert value(during, "mediagraph_subscriptions_active", **subscription) == (
        value(before, "mediagraph_subscriptions_active", **subscription) + 1
    )
    mutation = {"operation": "createUpload", "type": "mutation"}
    assert delta("mediagraph_graphql_requests_total", **mutation) == 1
    assert delta("mediagraph_graphql_request_duration_seconds_count", **mutation) == 1
    assert delta("mediagraph_graphql_requests_total", operation="uploadCompleted", type="subscription") == 1
    assert delta("mediagraph_graphql_errors_total", operation="myMedia", code="UNAUTHENTICATED") == 1
    assert delta("mediagraph_worker_events_total", outcome="completed") == 1
    assert delta("mediagraph_worker_messages_total", result="deleted") >= 1
    assert delta("mediagraph_upload_processing_lag_seconds_count", outcome="completed") == 1
    assert delta("mediagraph_events_published_total", type="COMPLETED") == 1
    assert delta("mediagraph_events_delivered_total") >= 1
    # The socket closed: the gauges come back down (the server notices the close a moment later).
    for _ in range(100):
        final = await scrape(metrics_url)
        if value(final, "mediagraph_websocket_connections") == value(
            before, "mediagraph_websocket_connections"
        ):
            break
        await asyncio.sleep(0.05)
    assert value(final, "mediagraph_websocket_connections") == value(
        before, "mediagraph_websocket_connections"
    )
    assert value(final, "mediagraph_subscriptions_active", **subscription) == value(
        before, "mediagraph_subscriptions_active", **subscription
    )


async def test_log_lines_are_json_and_follow_the_request_into_the_worker(
    api: str, worker: SqsWorker, token: Callable[..., str], log_lines: io.StringIO
) -> None:
    alice = token("alice")
    data = jpeg_bytes(20_000)
    async with WsClient(api, alice) as ws:
        await ws.subscribe(UPLOAD_COMPLETED)
        await listening(api, "alice")
        payload, request_id = await _create(api, alice, data)
        assert await put_upload(payload["upload"], data) == 200
        assert (await ws.receive(timeout=20))["type"] == "next"
    for _ in range(100):  # the server logs the subscription's end as it notices the close
        if '"msg": "websocket closed"' in log_lines.getvalue():
            break
        await asyncio.sleep(0.05)

    text = log_lines.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line parses
    assert lines
    request = [line for line in lines if line["msg"] == "request" and line.get("operation") == "createUpload"]
    assert len(request) == 1
    assert request[0]["request_id"] == request_id
    assert request[0]["status"] == 200 and request[0]["user"] == "alice"
    assert request[0]["path"] == "/graphql" and "?" not in request[0]["path"]

    worker_lines = [line for line in lines if line["logger"] == "mediagraph.worker"]
    processed = [line for line in worker_lines if line["msg"] == "media processed"]
    assert [line["request_id"] for line in processed] == [request_id]
    handled = [line for line in worker_lines if line["msg"] == "s3 event handled"]
    assert [line["request_id"] for line in handled] == [request_id]

    messages = {line["msg"] for line in lines}
    assert {"websocket opened", "subscription started", "subscription ended", "websocket closed"} <= messages

    # Neither the bearer token, nor the presigned URL's signature, nor the signing secret: not
    # from us, and not from a library (the in-process test client logs the URL it PUTs to).
    signature = payload["upload"]["url"].split("X-Amz-Signature=")[1].split("&")[0]
    assert "X-Amz-Signature=REDACTED" in text
    for secret in (alice, alice.split(".")[2], signature, TEST_SECRET):
        assert secret not in text


async def test_dlq_depth_is_exported(runtime: Runtime, resources: Resources) -> None:
    await runtime.clients.sqs.send_message(QueueUrl=resources.dlq_url, MessageBody="{}")
    worker = SqsWorker(
        runtime.clients.sqs, resources.queue_url, runtime.processing, dlq_url=resources.dlq_url
    )
    await worker.refresh_queue_depths()
    from infra.observability import metrics

    assert metrics.sample("mediagraph_queue_messages", {"queue": "dlq"}) == 1
    assert metrics.sample("mediagraph_queue_messages", {"queue": "main"}) == 0
