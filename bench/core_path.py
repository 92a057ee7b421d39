"""Core path latency: end of the PUT → the subscription message, through the real API and worker
(subprocesses) against moto, versus a bare S3 → SQS → Redis → WebSocket relay on the same moto and
Redis. Also media(id) requests/s with moto behind it (reported apart: moto dominates it)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench.harness import BENCH_SECRET, free_port, percentile, requests_per_second, subprocess_server
from infra.aws.clients import open_clients
from infra.aws.embedded import moto_server
from infra.aws.resources import ensure_resources
from infra.identity.jwt import issue_dev_token
from infra.settings import Settings
from tests.client import WsClient, create_upload, put_upload
from tests.media_files import jpeg_bytes

UPLOAD_COMPLETED = "subscription { uploadCompleted { mediaId status } }"


def _settings(endpoint: str, redis_url: str, name: str) -> Settings:
    return Settings(
        _env_file=None,
        aws_endpoint_url=endpoint,
        bucket=name,
        table=name,
        queue=name,
        dlq=f"{name}-dlq",
        redis_url=redis_url,
        redis_prefix=f"{name}:",
        jwt_secret=BENCH_SECRET,
        worker_wait_s=1,
    )


def _env(settings: Settings) -> dict[str, str]:
    return {
        "MEDIAGRAPH_AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
        "MEDIAGRAPH_BUCKET": settings.bucket,
        "MEDIAGRAPH_TABLE": settings.table,
        "MEDIAGRAPH_QUEUE": settings.queue,
        "MEDIAGRAPH_DLQ": settings.dlq,
        "MEDIAGRAPH_REDIS_URL": settings.redis_url,
        "MEDIAGRAPH_REDIS_PREFIX": settings.redis_prefix,
        "MEDIAGRAPH_JWT_SECRET": BENCH_SECRET,
        "MEDIAGRAPH_WORKER_WAIT_S": "1",
        "MEDIAGRAPH_LOG_LEVEL": "WARNING",
        # One client hammering on purpose: the benchmark measures latency, not the limiter.
        "MEDIAGRAPH_RATE_LIMIT_ENABLED": "false",
        # A thousand sockets of one bench user from one address: the limits are for the internet.
        "MEDIAGRAPH_WS_MAX_CONNECTIONS_PER_USER": "5000",
        "MEDIAGRAPH_WS_MAX_CONNECTIONS_PER_ADDRESS": "5000",
        # No metrics listeners: several servers run at once, and fixed ports would collide.
        "MEDIAGRAPH_METRICS_PORT": "0",
        "MEDIAGRAPH_WORKER_METRICS_PORT": "0",
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
    }


async def prepare_resources(settings: Settings) -> str:
    async with AsyncExitStack() as stack:
        clients = await open_clients(settings.aws, stack)
        resources = await ensure_resources(clients, settings.aws)
        await clients.sqs.purge_queue(QueueUrl=resources.queue_url)  # drop s3:TestEvent
        return resources.queue_url


async def _ours(settings: Settings, uploads: int, warmup: int) -> tuple[list[float], dict[str, float]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(settings)
    token = issue_dev_token(settings.tokens, "bench")
    with (
        subprocess_server(["-m", "infra.roots.cli", "serve", "--port", str(port)], port, env),
        subprocess_server(["-m", "infra.roots.cli", "worker"], port, env),
    ):
        latencies: list[float] = []
        async with WsClient(base, token) as ws:
            await ws.subscribe(UPLOAD_COMPLETED)
            for i in range(warmup + uploads):
                data = jpeg_bytes(20_000)
                payload = await create_upload(base, token, data)
                await put_upload(payload["upload"], data)
                sent = time.perf_counter()
                message = await ws.receive(timeout=30)
                if message["type"] != "next":
                    raise RuntimeError(message)
                if i >= warmup:
                    latencies.append(time.perf_counter() - sent)
        media_id = payload["media"]["id"]
        rps = await requests_per_second(
            f"{base}/graphql",
            json={
                "query": "query($id: ID!) { media(id: $id) { mediaId status title } }",
                "variables": {"id": media_id},
            },
            headers={"Authorization": f"Bearer {token}"},
            seconds=3,
        )
        # A 50-item page of the same user, through the real runtime (Redis page cache, moto behind).
        page_rps = await requests_per_second(
            f"{base}/graphql",
            json={"query": "{ myMedia(first: 50) { edges { node { mediaId status title } } } }"},
            headers={"Authorization": f"Bearer {token}"},
            seconds=3,
        )
    return latencies, {"media": rps, "page": page_rps}


async def _bare(settings: Settings, uploads: int, warmup: int) -> list[float]:
    port = free_port()
    queue_url = await prepare_resources(settings)
    args = [
        "-m",
        "bench.bare_relay",
        "--port",
        str(port),
        "--queue-url",
        queue_url,
        "--redis-url",
        settings.redis_url,
        "--channel",
        f"{settings.redis_prefix}relay",
    ]
    latencies: list[float] = []
    with subprocess_server(args, port, _env(settings)):
        async with AsyncExitStack() as stack:
            s3 = (await open_clients(settings.aws, stack)).s3
            ws = await stack.enter_async_context(connect(f"ws://127.0.0.1:{port}"))
            await asyncio.sleep(0.5)  # let the relay subscribe to Redis
            async with httpx.AsyncClient() as http:
                for i in range(warmup + uploads):
                    data = jpeg_bytes(20_000)
                    url = await s3.generate_presigned_url(
                        "put_object",
                        Params={
                            "Bucket": settings.bucket,
                            "Key": f"uploads/{i}",
                            "ContentType": "image/jpeg",
                        },
                    )
                    await http.put(url, content=data, headers={"Content-Type": "image/jpeg"})
                    sent = time.perf_counter()
                    json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if i >= warmup:
                        latencies.append(time.perf_counter() - sent)
    return latencies


async def run(redis_url: str, uploads: int = 100, warmup: int = 5) -> dict[str, Any]:
    with moto_server() as endpoint:
        ours_settings = _settings(endpoint, redis_url, "bench-ours")
        await prepare_resources(ours_settings)
        ours, moto_rps = await _ours(ours_settings, uploads, warmup)
        bare = await _bare(_settings(endpoint, redis_url, "bench-bare"), uploads, warmup)
    result: dict[str, Any] = {"uploads": uploads}
    for q in (50, 99):
        ours_ms, bare_ms = percentile(ours, q) * 1000, percentile(bare, q) * 1000
        result[f"p{q}_ms"] = round(ours_ms, 1)
        result[f"bare_p{q}_ms"] = round(bare_ms, 1)
        result[f"p{q}_ratio"] = round(ours_ms / bare_ms, 2)
    result["media_rps_moto"] = round(moto_rps["media"], 1)
    result["page_rps_moto"] = round(moto_rps["page"], 1)
    return result


async def section(redis_url: str) -> dict[str, Any]:
    uploads = int(os.environ.get("BENCH_UPLOADS", "100"))
    print(f"core path: end of PUT → uploadCompleted, {uploads} uploads, vs bare relay ...", flush=True)
    core = await run(redis_url, uploads=uploads)
    print(
        f"  p50 {core['p50_ms']} ms (bare {core['bare_p50_ms']} ms, ratio {core['p50_ratio']}); "
        f"p99 {core['p99_ms']} ms (bare {core['bare_p99_ms']} ms, ratio {core['p99_ratio']})\n"
        f"  with moto behind the real runtime: media(id) {core['media_rps_moto']} req/s, "
        f"50-item myMedia page {core['page_rps_moto']} req/s (moto-bound; not comparable)",
        flush=True,
    )
    return core
