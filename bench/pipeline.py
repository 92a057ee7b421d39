"""Pipeline benchmark (issue 18): from the end of a photo's PUT to its COMPLETED event, through our
worker (a subprocess, default settings), against a bare pipeline (bench/bare_pipeline.py: the same
work done once, one step after another on one thread) on the same Redis, with the same photos.

Photos: a fixed, seeded recipe with photographic detail (tests/media_files.phone_photo), JPEG
q90, 1080x1080 (~0.45 MB) and 4032x3024 (~4.6 MB). Every phase starts its own moto server, in its
own process, on empty tables (moto's TransactWriteItems copies every table, so its cost grows
with their size); moto's CPU is measured apart from the worker's and reported as its share, and
moto counts the calls it serves by caller (bench/moto_calls.py): the worker's, the bare
pipeline's, and the bench's own (the createUpload before each of our PUTs).

Figures: p50/p99 PUT end → COMPLETED over BENCH_PIPELINE_UPLOADS (30) sequential uploads of each
size, ÷ bare (goal ≤ 1.5); uploads/s with 50 in flight (1080 photos) ÷ bare (goal ≥ 0.7); worker
CPU ms per 12 MP photo next to bare's; the variants' bytes; DynamoDB, S3 and SQS calls per upload
and moto's CPU for them, by caller."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from bench.core_path import _env as core_path_env
from bench.core_path import _settings as core_path_settings
from bench.core_path import prepare_resources
from bench.harness import free_port, percentile, subprocess_server
from bench.moto_calls import calls
from infra.aws.clients import open_clients
from infra.roots.runtime import open_runtime
from infra.settings import Settings
from services.core.auth import Principal
from services.ingest.uploads import UploadRequest
from tests.media_files import phone_photo

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # moto's; never real AWS
SIZES = {"1080": (1080, 1080), "4032": (4032, 3024)}


def variant_of(photo: bytes, n: int) -> bytes:
    """The same pixels under other bytes (a JPEG comment with a counter after SOI): each upload
    has its own SHA-256, so none is taken for an instant re-upload of an earlier one."""
    note = f"bench upload {n}".encode()
    return photo[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + photo[2:]


def cpu_ms(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / _CLOCK_TICKS


@dataclass
class Stack:
    endpoint: str
    moto_pid: int
    settings: Settings


@contextlib.contextmanager
def moto(name: str, redis_url: str) -> Iterator[Stack]:
    """A fresh moto server in its own process: empty tables."""
    os.environ.update(_FAKE_AWS)
    port = free_port()
    with subprocess_server(["-m", "bench.moto_calls", str(port)], port, _FAKE_AWS) as process:
        endpoint = f"http://127.0.0.1:{port}"
        # The bench process creates the uploads: 50 pending at once is over a user's quota.
        settings = core_path_settings(endpoint, redis_url, name).model_copy(
            update={"quota_pending_uploads_per_user": 10_000}
        )
        yield Stack(endpoint, process.pid, settings)


def _worker_env(settings: Settings, metrics_port: int) -> dict[str, str]:
    # The core-path bench's environment, with the worker's metrics port as its "I am up" signal.
    return {
        **_FAKE_AWS,
        **core_path_env(settings),
        "MEDIAGRAPH_WORKER_METRICS_PORT": str(metrics_port),
        "AWS_SDK_UA_APP_ID": "worker",  # its calls counted apart from the bench's (bench/moto_calls.py)
    }


class UploadsLost(TimeoutError):
    def __init__(self, keys: set[str]) -> None:
        super().__init__(f"{len(keys)} uploads never completed: {sorted(keys)[:5]}")
        self.keys = keys


@dataclass
class Completions:
    """COMPLETED events seen on a Redis channel, by key, with the time they arrived."""

    seen: dict[str, float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, keys: set[str], timeout: float = 120) -> None:
        deadline = time.perf_counter() + timeout
        while not keys <= self.seen.keys():
            self.changed.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise UploadsLost(keys - self.seen.keys())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


@contextlib.asynccontextmanager
async def listening(
    redis_url: str, channel: str, key_of: Callable[[dict[str, Any]], str | None]
) -> AsyncIterator[Completions]:
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    completions = Completions()

    async def read() -> None:
        async for message in pubsub.listen():
            arrived = time.perf_counter()
            data = message["data"]
            # Our bus publishes "<stream id>|<event JSON>"; the bare pipeline the JSON alone.
            key = key_of(json.loads(data[data.index(b"|") + 1 :] if data[:1] != b"{" else data))
            if key is not None:
                completions.seen[key] = arrived
                completions.changed.set()

    reader = asyncio.create_task(read())
    try:
        yield completions
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await pubsub.aclose()
        await redis.aclose()


@dataclass
class Phase:
    latencies_s: list[float] = field(default_factory=list)
    worker_cpu_ms: float = 0.0
    moto_cpu_ms: float = 0.0
    uploads: int = 0
    rate: float = 0.0
    variant_bytes: dict[str, int] = field(default_factory=dict)
    # "<caller> <service>" → calls per upload; "<caller>" → moto's CPU ms per upload for them.
    calls: dict[str, float] = field(default_factory=dict)
    moto_cpu_by_caller: dict[str, float] = field(default_factory=dict)
    # "<caller> <service>.<operation>" → (calls, moto's CPU ms), per upload: the JSON's detail.
    operations: dict[str, tuple[float, float]] = field(default_factory=dict)


async def _ours(redis_url: str, photo: bytes, *, uploads: int, warmup: int, in_flight: int) -> Phase:
    """Our worker with its default settings; uploads created as the API does, then PUT."""
    with moto("bench-pipeline-ours", redis_url) as stack:
        await prepare_resources(stack.settings)
        metrics_port = free_port()
        args = ["-m", "infra.roots.cli", "worker"]
        env = _worker_env(stack.settings, metrics_port)
        async with AsyncExitStack() as exits:
            runtime = await exits.enter_async_context(open_runtime(stack.settings, listen=False))
            owner = Principal("bench")
            completions = await exits.enter_async_context(
                listening(
                    redis_url,
                    runtime.bus.channel(owner.user_id),
                    lambda e: e["media"]["id"] if e.get("type") == "COMPLETED" else None,
                )
            )
            counter = iter(range(10**9))

            async def upload() -> tuple[str, float]:
                data = variant_of(photo, next(counter))
                ticket = await runtime.uploads.create_upload(
                    owner,
                    UploadRequest("photo.jpg", "image/jpeg", len(data), hashlib.sha256(data).hexdigest()),
                )
                await runtime.clients.s3.put_object(
                    Bucket=stack.settings.bucket, Key=ticket.media.object_key, Body=data,
                    ContentType="image/jpeg",
                )  # fmt: skip
                return ticket.media.id, time.perf_counter()

            with subprocess_server(args, metrics_port, env) as worker:
                try:
                    phase = await _drive(upload, completions, worker.pid, stack, uploads, warmup, in_flight)
                except UploadsLost as lost:
                    found = [await runtime.repo.get(media_id) for media_id in sorted(lost.keys)]
                    states = [(m.id, m.status.value, m.reject_reason) if m else None for m in found]
                    raise RuntimeError(f"uploads never completed: {states}") from lost
                if in_flight == 1:
                    last = next(reversed(completions.seen))
                    listing = await runtime.clients.s3.list_objects_v2(
                        Bucket=stack.settings.bucket, Prefix=f"{stack.settings.derived_prefix}{last}/"
                    )
                    phase.variant_bytes = {
                        item["Key"].rsplit("/", 1)[1]: item["Size"] for item in listing.get("Contents", [])
                    }
        return phase


async def _bare(redis_url: str, photo: bytes, *, uploads: int, warmup: int, in_flight: int) -> Phase:
    with moto("bench-pipeline-bare", redis_url) as stack:
        settings = stack.settings
        queue_url = await prepare_resources(settings)
        port = free_port()
        channel = f"{settings.redis_prefix}bare"
        args = ["-m", "bench.bare_pipeline", "--port", str(port), "--queue-url", queue_url,
                "--bucket", settings.bucket, "--table", settings.table, "--redis-url", redis_url,
                "--channel", channel]  # fmt: skip
        env = {**_FAKE_AWS, "AWS_ENDPOINT_URL": stack.endpoint, "AWS_SDK_UA_APP_ID": "bare"}
        async with AsyncExitStack() as exits:
            clients = await open_clients(settings.aws, exits)
            completions = await exits.enter_async_context(
                listening(redis_url, channel, lambda e: e.get("key"))
            )
            counter = iter(range(10**9))

            async def upload() -> tuple[str, float]:
                n = next(counter)
                key = f"{settings.upload_prefix}bare-{n}"
                await clients.dynamodb.put_item(
                    TableName=settings.table,
                    Item={"pk": {"S": key}, "sk": {"S": "BARE"}, "status": {"S": "PENDING"}},
                )
                data = variant_of(photo, n)
                await clients.s3.put_object(
                    Bucket=settings.bucket, Key=key, Body=data, ContentType="image/jpeg"
                )
                return key, time.perf_counter()

            with subprocess_server(args, port, env) as bare:
                return await _drive(upload, completions, bare.pid, stack, uploads, warmup, in_flight)


async def _drive(
    upload: Callable[[], Any],
    completions: Completions,
    worker_pid: int,
    stack: Stack,
    uploads: int,
    warmup: int,
    in_flight: int,
) -> Phase:
    """`in_flight` 1: uploads one after another, each waited for (latency). More: that many PUT
    at once, and the time from the first PUT's end to the last COMPLETED (throughput)."""
    for _ in range(warmup):
        key, _ = await upload()
        await completions.wait_for({key})
    phase = Phase(uploads=uploads)
    moto_pid = stack.moto_pid
    worker_before, moto_before = cpu_ms(worker_pid), cpu_ms(moto_pid)
    calls_before, call_cpu_before = await asyncio.to_thread(calls, stack.endpoint)
    if in_flight == 1:
        for _ in range(uploads):
            key, sent = await upload()
            await completions.wait_for({key})
            phase.latencies_s.append(completions.seen[key] - sent)
    else:
        started = await asyncio.gather(*(upload() for _ in range(in_flight)))
        # A bound for a machine under load, not a measurement.
        await completions.wait_for({key for key, _ in started}, timeout=900)
        first = min(sent for _, sent in started)
        phase.rate = in_flight / (max(completions.seen[key] for key, _ in started) - first)
        phase.uploads = in_flight
    phase.worker_cpu_ms = (cpu_ms(worker_pid) - worker_before) / phase.uploads
    phase.moto_cpu_ms = (cpu_ms(moto_pid) - moto_before) / phase.uploads
    calls_after, call_cpu_after = await asyncio.to_thread(calls, stack.endpoint)
    for (caller, service, _), n in (calls_after - calls_before).items():
        key = f"{caller or 'bench'} {service}"
        phase.calls[key] = phase.calls.get(key, 0) + n / phase.uploads
    for (caller, _, _), ms in (call_cpu_after - call_cpu_before).items():
        key = caller or "bench"
        phase.moto_cpu_by_caller[key] = phase.moto_cpu_by_caller.get(key, 0) + ms / phase.uploads
    phase.calls = {key: round(n, 2) for key, n in sorted(phase.calls.items())}
    spent = call_cpu_after - call_cpu_before
    phase.operations = {
        f"{caller or 'bench'} {service}.{operation}": (
            round(n / phase.uploads, 2),
            round(spent[(caller, service, operation)] / phase.uploads, 1),
        )
        for (caller, service, operation), n in sorted((calls_after - calls_before).items())
    }
    phase.moto_cpu_by_caller = {key: round(ms, 1) for key, ms in sorted(phase.moto_cpu_by_caller.items())}
    return phase


async def run(redis_url: str, uploads: int = 30, in_flight: int = 50) -> dict[str, Any]:
    photos = {name: phone_photo(*size) for name, size in SIZES.items()}
    result: dict[str, Any] = {"uploads": uploads, "in_flight": in_flight}
    for name, photo in photos.items():
        ours = await _ours(redis_url, photo, uploads=uploads, warmup=3, in_flight=1)
        bare = await _bare(redis_url, photo, uploads=uploads, warmup=3, in_flight=1)
        figures: dict[str, Any] = {"photo_bytes": len(photo)}
        for q in (50, 99):
            ours_ms = percentile(ours.latencies_s, q) * 1000
            bare_ms = percentile(bare.latencies_s, q) * 1000
            figures[f"p{q}_ms"] = round(ours_ms, 1)
            figures[f"bare_p{q}_ms"] = round(bare_ms, 1)
            figures[f"p{q}_ratio"] = round(ours_ms / bare_ms, 2)
        figures["worker_cpu_ms"] = round(ours.worker_cpu_ms, 1)
        figures["bare_cpu_ms"] = round(bare.worker_cpu_ms, 1)
        figures["moto_cpu_ms"] = round(ours.moto_cpu_ms, 1)
        figures["bare_moto_cpu_ms"] = round(bare.moto_cpu_ms, 1)
        figures["variant_bytes"] = ours.variant_bytes
        figures["calls_per_upload"] = {"ours": ours.calls, "bare": bare.calls}
        figures["moto_cpu_ms_by_caller"] = {"ours": ours.moto_cpu_by_caller, "bare": bare.moto_cpu_by_caller}
        figures["calls_and_moto_cpu_ms_by_operation"] = {"ours": ours.operations, "bare": bare.operations}
        result[name] = figures
        _print_photo(name, figures)
    ours = await _ours(redis_url, photos["1080"], uploads=in_flight, warmup=3, in_flight=in_flight)
    bare = await _bare(redis_url, photos["1080"], uploads=in_flight, warmup=3, in_flight=in_flight)
    result["throughput"] = {
        "uploads_per_s": round(ours.rate, 2),
        "bare_uploads_per_s": round(bare.rate, 2),
        "ratio": round(ours.rate / bare.rate, 2),
        "worker_cpu_ms": round(ours.worker_cpu_ms, 1),
        "bare_cpu_ms": round(bare.worker_cpu_ms, 1),
        "moto_cpu_ms": round(ours.moto_cpu_ms, 1),
        "bare_moto_cpu_ms": round(bare.moto_cpu_ms, 1),
        "calls_per_upload": {"ours": ours.calls, "bare": bare.calls},
        "moto_cpu_ms_by_caller": {"ours": ours.moto_cpu_by_caller, "bare": bare.moto_cpu_by_caller},
        "calls_and_moto_cpu_ms_by_operation": {"ours": ours.operations, "bare": bare.operations},
    }
    return result


def _print_photo(name: str, f: dict[str, Any]) -> None:
    print(
        f"  {name} ({f['photo_bytes'] / 1e6:.2f} MB): p50 {f['p50_ms']} ms "
        f"(bare {f['bare_p50_ms']}, ratio {f['p50_ratio']}); "
        f"p99 {f['p99_ms']} ms (bare {f['bare_p99_ms']}, ratio {f['p99_ratio']})\n"
        f"    CPU per photo: worker {f['worker_cpu_ms']} ms, bare {f['bare_cpu_ms']} ms; "
        f"moto {f['moto_cpu_ms']} ms (bare's moto {f['bare_moto_cpu_ms']} ms); "
        f"variants {f['variant_bytes']}\n"
        f"    calls per upload {f['calls_per_upload']}; moto CPU ms per upload by caller "
        f"{f['moto_cpu_ms_by_caller']}",
        flush=True,
    )


async def section(redis_url: str) -> dict[str, Any]:
    uploads = int(os.environ.get("BENCH_PIPELINE_UPLOADS", "30"))
    print(
        f"pipeline: PUT end → COMPLETED, {uploads} uploads of each photo, then 50 in flight, "
        "vs a bare sequential pipeline (fresh moto per phase) ...",
        flush=True,
    )
    result = await run(redis_url, uploads=uploads)
    t = result["throughput"]
    print(
        f"  50 in flight (1080): {t['uploads_per_s']} uploads/s (bare {t['bare_uploads_per_s']}, "
        f"ratio {t['ratio']}); CPU per upload: worker {t['worker_cpu_ms']} ms, bare {t['bare_cpu_ms']} ms, "
        f"moto {t['moto_cpu_ms']} ms (bare's {t['bare_moto_cpu_ms']} ms)\n"
        f"    calls per upload {t['calls_per_upload']}; moto CPU ms per upload by caller "
        f"{t['moto_cpu_ms_by_caller']}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(section(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/14"))))
