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
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from ulid import ULID

from bench.core_path import _env, _settings, prepare_resources
from bench.harness import free_port, median, percentile, subprocess_server
from bench.ws_counter import CountingClient, open_client
from infra.aws.embedded import moto_server
from infra.identity.jwt import issue_dev_token
from infra.redis.bus import RedisEventBus
from services.core.events import MediaEvent, MediaEventType
from services.core.media import MediaStatus
from tests.fakes import make_media

SUBSCRIPTION = "subscription { mediaEvents { eventId type occurredAt media { mediaId status title } } }"
USER = "bench"


async def _connect_graphql(port: int, token: str, subscriptions: int) -> CountingClient:
    client = await open_client("127.0.0.1", port, "/graphql", "graphql-transport-ws")
    client.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    deadline = time.perf_counter() + 30
    while not client.times:
        if time.perf_counter() > deadline:
            raise RuntimeError("no connection_ack")
        await asyncio.sleep(0.01)
    if b"connection_ack" not in client.last:
        raise RuntimeError(f"no ack: {client.last!r}")
    for op in range(subscriptions):
        client.send_json({"id": str(op), "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
    return client


@contextlib.asynccontextmanager
async def _clients(
    count: int, make: Callable[[], Awaitable[CountingClient]]
) -> AsyncIterator[list[CountingClient]]:
    gate = asyncio.Semaphore(50)

    async def one() -> CountingClient:
        async with gate:
            return await make()

    clients = await asyncio.gather(*(one() for _ in range(count)))
    try:
        yield clients
    finally:
        for client in clients:
            client.close()
        await asyncio.sleep(0.2)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _redis_connections(pid: int, redis_port: int, listing: list[dict[str, Any]]) -> tuple[int, int]:
    """(all, in pub/sub mode) Redis connections of process `pid`: its established TCP
    connections to `redis_port` (Linux /proc), told apart by Redis's CLIENT LIST."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    local_ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if (
                    fields[3] == "01"
                    and fields[9] in inodes
                    and int(fields[2].split(":")[1], 16) == redis_port
                ):
                    local_ports.add(int(fields[1].split(":")[1], 16))
    subscribed = sum(
        1
        for client in listing
        if int(str(client["addr"]).rsplit(":", 1)[1]) in local_ports
        and (int(client.get("sub", 0)) > 0 or int(client.get("psub", 0)) > 0)
    )
    return len(local_ports), subscribed


def _event(title: str) -> MediaEvent:
    media = replace(make_media(b"x", owner_id=USER, status=MediaStatus.COMPLETED), title=title)
    return MediaEvent(MediaEventType.COMPLETED, media, media.created_at)


async def _all_received(
    clients: list[CountingClient], bases: list[int], expected: int, timeout: float
) -> float:
    """perf_counter when every client has `expected` more messages than its base; raises on timeout."""
    deadline = time.perf_counter() + timeout
    while any(len(client.times) < base + expected for client, base in zip(clients, bases, strict=True)):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"some clients got fewer than {expected} messages")
        await asyncio.sleep(0.002)
    return max(client.times[base + expected - 1] for client, base in zip(clients, bases, strict=True))


async def _throughput(
    clients: list[CountingClient], publish: Callable[[int], Awaitable[None]], events: int
) -> float:
    bases = [len(client.times) for client in clients]
    started = time.perf_counter()
    for i in range(events):
        await publish(i)
    finished = await _all_received(clients, bases, events, timeout=120)
    return len(clients) * events / (finished - started)


async def _latencies(
    clients: list[CountingClient], publish: Callable[[int], Awaitable[None]], events: int, rate: float
) -> list[float]:
    bases = [len(client.times) for client in clients]
    sent: list[float] = []
    for i in range(events):
        sent.append(time.perf_counter())
        await publish(i)
        await asyncio.sleep(max(0.0, sent[0] + (i + 1) / rate - time.perf_counter()))
    await _all_received(clients, bases, events, timeout=120)
    return [
        client.times[base + i] - sent[i]
        for client, base in zip(clients, bases, strict=True)
        for i in range(events)
    ]


async def _warm(clients: list[CountingClient], publish: Callable[[int], Awaitable[None]]) -> None:
    """One untimed event: every subscription is live before anything is timed."""
    bases = [len(client.times) for client in clients]
    await publish(-1)
    await _all_received(clients, bases, 1, timeout=30)


async def run(
    redis_url: str, subscribers: int = 1000, events: int = 50, latency_events: int = 20, rounds: int = 3
) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * subscribers + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # inherited by the servers
    redis_port = urlsplit(redis_url).port or 6379
    result: dict[str, Any] = {"subscribers": subscribers, "events_per_round": events, "rounds": rounds}
    with moto_server() as endpoint:
        settings = _settings(endpoint, redis_url, f"bench-rt-{str(ULID()).lower()[-6:]}")
        env = _env(settings)
        await prepare_resources(settings)  # the API records users in DynamoDB on connect
        token = issue_dev_token(settings.tokens, USER)
        redis = Redis.from_url(redis_url)
        bus = RedisEventBus(redis, prefix=settings.redis_prefix)

        async def publish_ours(i: int) -> None:
            await bus.publish(_event(f"event {i}"))

        # Memory of 20 idle subscriptions per WebSocket (the connection's cost shared).
        port = free_port()
        with subprocess_server(["-m", "infra.roots.cli", "serve", "--port", str(port)], port, env) as server:
            async with _clients(5, lambda: _connect_graphql(port, token, 20)):
                await asyncio.sleep(0.5)  # code paths loaded before the baseline
            await asyncio.sleep(0.5)
            before = _rss_kib(server.pid)
            async with _clients(subscribers // 20, lambda: _connect_graphql(port, token, 20)):
                await asyncio.sleep(2)
                after = _rss_kib(server.pid)
        result["idle_kib_per_subscription_shared_ws"] = round((after - before) / subscribers, 1)

        # Ours and the relay side by side, each with its 1,000 clients, measured in alternate
        # rounds: on a shared 2-core machine, load drifts; alternating spreads it over both.
        port, relay_port = free_port(), free_port()
        channel = f"{settings.redis_prefix}relay"
        relay = ["-m", "bench.broadcast_relay", "--port", str(relay_port), "--redis-url", redis_url]
        with (
            subprocess_server(["-m", "infra.roots.cli", "serve", "--port", str(port)], port, env) as server,
            subprocess_server([*relay, "--channel", channel], relay_port, env),
        ):
            async with _clients(5, lambda: _connect_graphql(port, token, 1)):
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.5)
            before = _rss_kib(server.pid)
            async with (
                _clients(subscribers, lambda: _connect_graphql(port, token, 1)) as ours,
                _clients(subscribers, lambda: open_client("127.0.0.1", relay_port, "/")) as bare,
            ):
                await asyncio.sleep(2)
                result["idle_kib_per_subscription"] = round((_rss_kib(server.pid) - before) / subscribers, 1)
                listing = await redis.client_list()
                total, subscribed = _redis_connections(server.pid, redis_port, listing)
                # Subscribers share the pub/sub connection; the pool's command connections (rate
                # limits, caches, view counts) come and go with other work, not with subscribers.
                result["redis_connections_per_process"] = total
                result["redis_pubsub_connections_per_process"] = subscribed
                await _warm(ours, publish_ours)
                payload = ours[0].last  # the very bytes our server sent, id and all

                async def publish_relay(i: int) -> None:
                    await redis.publish(channel, payload)

                await _warm(bare, publish_relay)
                ours_rates, bare_rates = [], []
                for _ in range(rounds):
                    ours_rates.append(await _throughput(ours, publish_ours, events))
                    bare_rates.append(await _throughput(bare, publish_relay, events))
                ours_rate, bare_rate = median(ours_rates), median(bare_rates)
                rate = ours_rate / 2 / subscribers
                ours_lat, bare_lat = [], []
                for _ in range(rounds):
                    ours_lat += await _latencies(ours, publish_ours, latency_events, rate)
                    bare_lat += await _latencies(bare, publish_relay, latency_events, rate)
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


async def section(redis_url: str) -> dict[str, Any]:
    print(
        "realtime: 1,000 WebSocket subscribers of one user vs websockets.broadcast / a bare relay ...",
        flush=True,
    )
    rt = await run(redis_url)
    print(
        f"  {rt['deliveries_per_s']} deliveries/s vs broadcast {rt['broadcast_deliveries_per_s']}, "
        f"ratio {rt['throughput_ratio']} (goal >= 0.7)\n"
        f"  p99 at half load {rt['p99_ms']} ms vs bare relay {rt['bare_p99_ms']} ms, "
        f"ratio {rt['p99_ratio']} (goal <= 1.5)\n"
        f"  Redis connections of the API process: {rt['redis_pubsub_connections_per_process']} "
        f"carrying all subscribers (goal 1); {rt['redis_connections_per_process']} in all\n"
        f"  idle subscription: {rt['idle_kib_per_subscription']} KiB each on its own WebSocket, "
        f"{rt['idle_kib_per_subscription_shared_ws']} KiB with 20 per WebSocket (goal <= 20)",
        flush=True,
    )
    return rt
