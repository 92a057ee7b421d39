"""The read path through the real application (bench/read_app.py), against a bare Starlette route
and a stock Strawberry server doing the same batched service calls, all in one server process.

Requests cycle through every media id (1,200) and gallery, and through 2,000 accounts of ten
kinds of viewer coming from 500 client addresses (behind a trusted proxy, as deployed). Ours is
limited by the real Redis rate limiter at the shipped limits (120/min and a burst of 30 per user,
600/min and 100 per address): the accounts and addresses are as many as keep a realistic load
inside them, and any refusal fails the run (the harness fails on any GraphQL error).

Reports throughput (closed loop, 16 connections) and p50/p99 latency at a fixed moderate rate,
half the slowest server's throughput, the same for all three (open loop: latency counted from
when each request was due, so a stall is not hidden)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

from bench.harness import BENCH_SECRET, exchange_ok, free_port, median, percentile, subprocess_server
from bench.read_app import (
    ACCOUNTS_PER_KIND,
    MEDIA_PER_OWNER,
    MEDIA_QUERY,
    OWNERS,
    PAGE_QUERY,
    VIEWER_KINDS,
    media_id,
    owner_id,
    viewer_id,
)
from infra.identity.jwt import issue_dev_token
from infra.settings import Settings

ADDRESSES = 500
# The latency figures' rate: this share of the slowest of the three's throughput in the same run,
# the same rate for all three (a fixed number would overload one machine and idle another).
MODERATE = 0.5


class Requests:
    """Pre-encoded HTTP/1.1 requests for one target, cycled; the client's cost stays far below
    the server's (a Python HTTP client library would be the bottleneck)."""

    def __init__(self, port: int, items: list[tuple[str, str, dict[str, str], bytes]], users: list[str]):
        self.port = port
        self.users = users  # the account of each request (for the rate budget)
        self.raw = []
        for method, path, headers, body in items:
            lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            if body:
                lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
            self.raw.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


class Cursor:
    def __init__(self, start: int = 0) -> None:
        self.next = start
        self.used: Counter[int] = Counter()

    def take(self, count: int) -> int:
        index = self.next % count
        self.next += 1
        self.used[index] += 1
        return index


async def throughput(requests: Requests, cursor: Cursor, seconds: float, concurrency: int = 16) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", requests.port)
        try:
            while time.perf_counter() < deadline:
                await exchange_ok(reader, writer, requests.raw[cursor.take(len(requests.raw))])
                done += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def warm_up(requests: Requests, cursor: Cursor, concurrency: int = 16) -> None:
    """Every request of the cycle once, before measuring: each account's token verified and
    each URL signed once, as on a server that has been up for a while (each is then redone once
    a minute: the token cache's and the URL cache's own lifetimes)."""

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", requests.port)
        try:
            while cursor.next < len(requests.raw):
                await exchange_ok(reader, writer, requests.raw[cursor.take(len(requests.raw))])
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))


async def latency(
    requests: Requests, cursor: Cursor, rate: float, seconds: float, connections: int = 16
) -> dict[str, float]:
    """Open loop at `rate`: request i is due at start + i/rate on connection i % connections;
    its latency runs from when it was due."""
    total = int(rate * seconds)
    latencies: list[float] = []
    start = time.perf_counter() + 0.05

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", requests.port)
        try:
            for i in range(offset, total, connections):
                due = start + i / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                await exchange_ok(reader, writer, requests.raw[cursor.take(len(requests.raw))])
                latencies.append(time.perf_counter() - due)
        finally:
            writer.close()

    await asyncio.gather(*(connection(k) for k in range(connections)))
    return {
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
    }


def _accounts() -> list[str]:
    # Interleaved kinds, so any run of requests meets every kind of viewer.
    return [viewer_id(k, a) for a in range(ACCOUNTS_PER_KIND) for k in range(VIEWER_KINDS)]


def targets(port: int) -> dict[str, dict[str, Requests]]:
    settings = Settings(_env_file=None, jwt_secret=BENCH_SECRET)
    accounts = _accounts()
    tokens = {user: issue_dev_token(settings.tokens, user, ttl_s=7200) for user in accounts}
    ids = [media_id(o, n) for n in range(MEDIA_PER_OWNER) for o in range(OWNERS)]
    owners = [owner_id(o) for o in range(OWNERS)]
    count = max(len(ids), len(accounts))

    def build(kind: str, page: bool) -> Requests:
        items, users = [], []
        for i in range(count if not page else len(accounts)):
            user = accounts[i % len(accounts)]
            subject = owners[i % len(owners)] if page else ids[i % len(ids)]
            users.append(user)
            if kind == "ours":
                query, variables = (
                    (PAGE_QUERY, {"owner": subject}) if page else (MEDIA_QUERY, {"id": subject})
                )
                headers = {
                    "Authorization": f"Bearer {tokens[user]}",
                    "X-Forwarded-For": f"10.0.{(i % ADDRESSES) // 250}.{(i % ADDRESSES) % 250 + 1}",
                }
                items.append(
                    (
                        "POST",
                        "/graphql",
                        headers,
                        json.dumps({"query": query, "variables": variables}).encode(),
                    )
                )
            elif kind == "stock":
                query, variables = (
                    (PAGE_QUERY, {"owner": subject}) if page else (MEDIA_QUERY, {"id": subject})
                )
                body = json.dumps({"query": query, "variables": variables}).encode()
                items.append(("POST", "/stock", {"X-Viewer": user}, body))
            else:
                path = f"/bare/gallery/{subject}" if page else f"/bare/media/{subject}"
                items.append(("GET", path, {"X-Viewer": user}, b""))
        return Requests(port, items, users)

    return {
        "media": {kind: build(kind, page=False) for kind in ("ours", "stock", "bare")},
        "page": {kind: build(kind, page=True) for kind in ("ours", "stock", "bare")},
    }


async def same_answers(requests: dict[str, Requests], samples: int = 30) -> None:
    """The three give the same data for the same request (viewer, item): the comparison is fair."""
    answers: dict[str, list[Any]] = {}
    for kind, target in requests.items():
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        try:
            step = max(1, len(target.raw) // samples)
            answers[kind] = [
                json.loads(await exchange_ok(reader, writer, target.raw[i]))
                for i in range(0, len(target.raw), step)
            ]
        finally:
            writer.close()
    if not answers["ours"] == answers["stock"] == answers["bare"]:
        for a, b, c in zip(answers["ours"], answers["stock"], answers["bare"], strict=True):
            if not a == b == c:
                raise RuntimeError(f"different answers:\n ours  {a}\n stock {b}\n bare  {c}")


async def run(redis_url: str, seconds: float = 3.0, rounds: int = 3) -> dict[str, Any]:
    port = free_port()
    result: dict[str, Any] = {}
    with subprocess_server(["-m", "bench.read_app", "--port", str(port), "--redis-url", redis_url], port):
        all_targets = targets(port)
        ours_used: Counter[str] = Counter()
        for name, requests in all_targets.items():
            await same_answers(requests)
            cursors = {kind: Cursor() for kind in requests}
            for kind, target in requests.items():
                await warm_up(target, cursors[kind])
            rps: dict[str, list[float]] = {kind: [] for kind in requests}
            for _ in range(rounds):  # interleaved, so drift on a noisy machine hits all alike
                for kind, target in requests.items():
                    rps[kind].append(await throughput(target, cursors[kind], seconds))
            rate = round(MODERATE * min(median(values) for values in rps.values()), 1)
            latencies = {
                kind: await latency(target, cursors[kind], rate, seconds) for kind, target in requests.items()
            }
            for index, uses in cursors["ours"].used.items():
                ours_used[requests["ours"].users[index]] += uses
            figures = {kind: round(median(values), 1) for kind, values in rps.items()}
            result[name] = {
                "rps": figures,
                "ratio_to_bare": round(figures["ours"] / figures["bare"], 3),
                "ratio_to_stock": round(figures["ours"] / figures["stock"], 3),
                "stock_ratio_to_bare": round(figures["stock"] / figures["bare"], 3),
                "latency_rate_rps": rate,
                "latency_ms": latencies,
            }
        result["rate_budget"] = {
            "requests_to_ours": sum(ours_used.values()),
            "most_from_one_account": max(ours_used.values()),
            "user_burst": 30,
        }
    return result


async def section(redis_url: str) -> dict[str, Any]:
    print("Reads through the real app vs a stock Strawberry server vs a bare route ...", flush=True)
    figures = await run(redis_url)
    for name, label in (("media", "media(id)"), ("page", "50-item gallery page")):
        f = figures[name]
        p50_p99 = ", ".join(f"{kind} {v['p50_ms']}/{v['p99_ms']}" for kind, v in f["latency_ms"].items())
        print(
            f"  {label}: ours {f['rps']['ours']} req/s, stock Strawberry {f['rps']['stock']}, bare "
            f"{f['rps']['bare']}; ours/bare {f['ratio_to_bare']}, ours/stock {f['ratio_to_stock']}; "
            f"p50/p99 ms at {f['latency_rate_rps']} req/s: {p50_p99}",
            flush=True,
        )
    print(f"  rate budget: {figures['rate_budget']}", flush=True)
    return figures
