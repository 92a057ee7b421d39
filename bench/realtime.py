"""Realtime at scale: 1,000 WebSocket subscribers of one user on the real API (a subprocess),
against `websockets.broadcast` of the very bytes the API sends, to the same 1,000 clients.

Figures: deliveries/s (ours / broadcast), p99 publish → receipt at half our rate (ours / bare
relay), Redis connections held by the API process with 1,000 subscribers, and the API's RSS per
idle subscription (each on its own WebSocket, and 20 per WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from ulid import ULID
from websockets.asyncio.client import ClientConnection, connect

from bench.core_path import _env, _settings
from bench.harness import free_port, percentile, subprocess_server
from infra.embedded import moto_server
from infra.jwt import issue_dev_token
from infra.redis_bus import RedisEventBus
from services.events import MediaEvent, MediaEventType
from services.media import Media, MediaStatus, Visibility

SUBSCRIPTION = "subscription { mediaEvents { eventId type occurredAt media { mediaId status title } } }"
USER = "bench"


@dataclass
class Client:
    """One WebSocket client: counts what it receives and when (perf_counter)."""

    ws: ClientConnection
    times: list[float] = field(default_factory=list)
    last: str = ""


async def _listen(client: Client) -> None:
    with contextlib.suppress(Exception):
        async for message in client.ws:
            client.times.append(time.perf_counter())
            client.last = message if isinstance(message, str) else message.decode()


async def _connect_graphql(url: str, token: str, subscriptions: int) -> Client:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], compression=None, max_queue=None)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
    ack = json.loads(await ws.recv())
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"no ack: {ack}")
    for op in range(subscriptions):
        await ws.send(json.dumps({"id": str(op), "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
    return Client(ws)


async def _connect_plain(url: str) -> Client:
    return Client(await connect(url, compression=None, max_queue=None))


@contextlib.asynccontextmanager
async def _clients(
    count: int, make: Callable[[], Awaitable[Client]], *, listen: bool = True
) -> AsyncIterator[list[Client]]:
    gate = asyncio.Semaphore(50)

    async def one() -> Client:
        async with gate:
            return await make()

    clients = await asyncio.gather(*(one() for _ in range(count)))
    tasks = [asyncio.create_task(_listen(client)) for client in clients] if listen else []
    try:
        yield clients
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*(client.ws.close() for client in clients), return_exceptions=True)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _tcp_peers(pid: int, remote_port: int) -> int:
    """Established TCP connections of process `pid` to `remote_port` (Linux /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if (
                    fields[3] == "01"
                    and fields[9] in inodes
                    and int(fields[2].split(":")[1], 16) == remote_port
                ):
                    count += 1
    return count


def _event(title: str) -> MediaEvent:
    now = datetime.now(UTC)
    media_id = str(ULID())
    media = Media(
        id=media_id,
        owner_id=USER,
        status=MediaStatus.COMPLETED,
        filename="a.jpg",
        content_type="image/jpeg",
        size=1,
        sha256="0" * 64,
        title=title,
        tags=(),
        visibility=Visibility.PRIVATE,
        object_key=f"uploads/{media_id}",
        created_at=now,
        updated_at=now,
    )
    return MediaEvent(MediaEventType.COMPLETED, media, now)


async def _all_received(clients: list[Client], expected: int, timeout: float) -> float:
    """perf_counter when every client has `expected` messages; raises on timeout."""
    deadline = time.perf_counter() + timeout
    while any(len(client.times) < expected for client in clients):
        if time.perf_counter() > deadline:
            short = sum(1 for client in clients if len(client.times) < expected)
            raise RuntimeError(f"{short} clients got fewer than {expected} messages")
        await asyncio.sleep(0.005)
    return max(client.times[expected - 1] for client in clients)


async def _throughput(clients: list[Client], publish: Callable[[int], Awaitable[None]], events: int) -> float:
    base = len(clients[0].times)
    started = time.perf_counter()
    for i in range(events):
        await publish(i)
    finished = await _all_received(clients, base + events, timeout=120)
    return len(clients) * events / (finished - started)


async def _latencies(
    clients: list[Client], publish: Callable[[int], Awaitable[None]], events: int, rate: float
) -> list[float]:
    base = len(clients[0].times)
    sent: list[float] = []
    for i in range(events):
        sent.append(time.perf_counter())
        await publish(i)
        await asyncio.sleep(max(0.0, sent[0] + (i + 1) / rate - time.perf_counter()))
    await _all_received(clients, base + events, timeout=120)
    return [client.times[base + i] - sent[i] for client in clients for i in range(events)]


async def run(redis_url: str, subscribers: int = 1000, events: int = 20) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * subscribers + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # inherited by the servers
    redis_port = urlsplit(redis_url).port or 6379
    result: dict[str, Any] = {"subscribers": subscribers, "events": events}
    with moto_server() as endpoint:
        settings = _settings(endpoint, redis_url, f"bench-rt-{str(ULID()).lower()[-6:]}")
        env = _env(settings)
        token = issue_dev_token(settings, USER)
        redis = Redis.from_url(redis_url)
        bus = RedisEventBus(redis, prefix=settings.redis_prefix)

        async def publish_ours(i: int) -> None:
            await bus.publish(_event(f"event {i}"))

        # Memory of 20 idle subscriptions per WebSocket (the connection's cost shared).
        port = free_port()
        url = f"ws://127.0.0.1:{port}/graphql"
        with subprocess_server(["-m", "infra.cli", "serve", "--port", str(port)], port, env) as server:
            async with _clients(5, lambda: _connect_graphql(url, token, 20)):
                await asyncio.sleep(0.5)  # code paths loaded before the baseline
            await asyncio.sleep(0.5)
            before = _rss_kib(server.pid)
            async with _clients(subscribers // 20, lambda: _connect_graphql(url, token, 20), listen=False):
                await asyncio.sleep(2)
                after = _rss_kib(server.pid)
        result["idle_kib_per_subscription_shared_ws"] = round((after - before) / subscribers, 1)

        port = free_port()
        url = f"ws://127.0.0.1:{port}/graphql"
        with subprocess_server(["-m", "infra.cli", "serve", "--port", str(port)], port, env) as server:
            async with _clients(5, lambda: _connect_graphql(url, token, 1)):
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.5)
            before = _rss_kib(server.pid)
            async with _clients(subscribers, lambda: _connect_graphql(url, token, 1)) as clients:
                await asyncio.sleep(2)
                result["idle_kib_per_subscription"] = round((_rss_kib(server.pid) - before) / subscribers, 1)
                result["redis_connections_per_process"] = _tcp_peers(server.pid, redis_port)
                await publish_ours(-1)  # every subscription is live before anything is timed
                await _all_received(clients, 1, timeout=30)
                template = clients[0].last
                ours_rate = await _throughput(clients, publish_ours, events)
                rate = ours_rate / 2 / subscribers
                ours_lat = await _latencies(clients, publish_ours, events, rate)

        channel = f"{settings.redis_prefix}relay"
        payload = template.encode()

        async def publish_relay(i: int) -> None:
            await redis.publish(channel, payload)

        port = free_port()
        relay = ["-m", "bench.broadcast_relay", "--port", str(port), "--redis-url", redis_url]
        with subprocess_server([*relay, "--channel", channel], port, env):
            async with _clients(subscribers, lambda: _connect_plain(f"ws://127.0.0.1:{port}")) as clients:
                await asyncio.sleep(1)
                await publish_relay(-1)
                await _all_received(clients, 1, timeout=30)
                bare_rate = await _throughput(clients, publish_relay, events)
                bare_lat = await _latencies(clients, publish_relay, events, rate)
        await redis.aclose()

    result["deliveries_per_s"] = round(ours_rate)
    result["broadcast_deliveries_per_s"] = round(bare_rate)
    result["throughput_ratio"] = round(ours_rate / bare_rate, 3)
    result["latency_rate_events_per_s"] = round(rate, 2)
    for q in (50, 99):
        ours_ms, bare_ms = percentile(ours_lat, q) * 1000, percentile(bare_lat, q) * 1000
        result[f"p{q}_ms"] = round(ours_ms, 1)
        result[f"bare_p{q}_ms"] = round(bare_ms, 1)
        result[f"p{q}_ratio"] = round(ours_ms / bare_ms, 2)
    return result


if __name__ == "__main__":
    print(
        json.dumps(
            asyncio.run(run(os.environ.get("MEDIAGRAPH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))),
            indent=2,
        )
    )
