"""Shared benchmark machinery: servers in subprocesses, a closed-loop load generator, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import json as _json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

BENCH_SECRET = "bench-secret-0123456789-0123456789-0123456789"  # noqa: S105  # a throwaway for local runs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def subprocess_server(
    args: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server module in its own process (its own core, as in production) until it listens."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, *args], env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"server {args} did not start:\n{log.read().decode()[-3000:]}")
                time.sleep(0.05)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=15)


async def exchange_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    """Send one pre-encoded request on a keep-alive connection and read its answer, which must be
    200 with no GraphQL errors (a benchmark that counted refusals would measure the wrong thing)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    payload = await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 200") or b'"errors"' in payload:
        raise RuntimeError(f"bad response: {head[:40]!r} {payload[:300]!r}")
    return payload


async def requests_per_second(
    url: str,
    *,
    json: dict[str, object] | None,
    headers: dict[str, str],
    seconds: float,
    concurrency: int = 16,
) -> float:
    """Closed loop over raw keep-alive HTTP/1.1: `concurrency` connections send back to back for
    `seconds`. A Python HTTP client library would be the bottleneck (httpx tops out near the
    server's speed); pre-encoded requests keep the client's cost far below the server's.
    Every answer must be 200 with no GraphQL errors."""
    parts = urlsplit(url)
    body = _json.dumps(json).encode() if json is not None else b""
    lines = [f"{'POST' if json is not None else 'GET'} {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if json is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    done = 0
    deadline = time.perf_counter() + seconds

    async def one_connection() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                await exchange_ok(reader, writer, request)
                done += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)
