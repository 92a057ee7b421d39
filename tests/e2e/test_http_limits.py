"""Request heads and slow clients, over real sockets against the server `mediagraph serve` and
`mediagraph dev` run (infra/http/server.py): header line, head size and header count limits
answer 431 and close; a request not fully arrived within the read timeout answers 408 and closes;
/healthz answers all along.

The audit: 8 to 16 MiB of headers and 5,000 headers were accepted, and half-sent requests were
still open after 150 s."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from infra.settings import Settings
from tests.client import WsClient
from tests.conftest import isolated_settings

pytestmark = pytest.mark.e2e

READ_TIMEOUT_S = 1.0  # short, so that the test waits little; the shipped default is 30 s
LINE, HEAD, COUNT = 16 * 1024, 64 * 1024, 100  # the shipped defaults
WAIT_S = 20  # a bound on waiting for the server, not a measurement


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_url, http_read_timeout_s=READ_TIMEOUT_S)


def test_defaults_are_the_documented_ones() -> None:
    fields = Settings.model_fields
    assert fields["http_max_header_line_bytes"].default == LINE
    assert fields["http_max_header_bytes"].default == HEAD
    assert fields["http_max_headers"].default == COUNT
    assert fields["http_read_timeout_s"].default == 30


@contextlib.asynccontextmanager
async def connection(api: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    url = urlsplit(api)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """The response, read until the server closes the connection (which it must)."""
    raw = await asyncio.wait_for(reader.read(), timeout=WAIT_S)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


async def send_head(api: str, headers: list[tuple[str, str]], *, path: str = "/healthz") -> int:
    async with connection(api) as (reader, writer):
        lines = [f"GET {path} HTTP/1.1", "Host: api", *(f"{name}: {value}" for name, value in headers)]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        status, response_headers, body = await answer(reader)
    if status == 431:
        assert response_headers["connection"] == "close"
        assert json.loads(body)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    return status


async def healthy(api: str) -> bool:
    async with httpx.AsyncClient(base_url=api, timeout=WAIT_S) as client:
        return (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(f"X-H{n}", "v") for n in range(COUNT - 1)], 200),  # Host + 99: at the limit
        ([(f"X-H{n}", "v") for n in range(COUNT)], 431),
        ([(f"X-H{n}", "v") for n in range(5000)], 431),  # the audit's 5,000
        ([("X-Big", "a" * (LINE - 20))], 200),
        ([("X-Big", "a" * LINE)], 431),  # one line over 16 KiB
        ([(f"X-Big{n}", "a" * (LINE - 100)) for n in range(3)], 200),  # ~48 KiB in all
        ([(f"X-Big{n}", "a" * (LINE - 100)) for n in range(5)], 431),  # ~80 KiB in all
    ],
    ids=["99-headers", "100-headers", "5000-headers", "line-at-limit", "line-over", "head-48k", "head-80k"],
)
async def test_header_limits(api: str, headers: list[tuple[str, str]], expected: int) -> None:
    assert await send_head(api, headers) == expected
    assert await healthy(api)


async def test_a_huge_head_is_refused_before_it_is_all_sent(api: str) -> None:
    # 8 MiB of one header, sent in pieces: the server answers 431 once it has 64 KiB, without
    # waiting for (or buffering) the rest, and the answer reaches the client still sending.
    async with connection(api) as (reader, writer):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Huge: ")
        response = asyncio.ensure_future(answer(reader))
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < 8 * 1024 * 1024 and not response.done():
                writer.write(b"a" * 65536)
                await writer.drain()
                sent += 65536
        status, _, _ = await response
    assert status == 431
    assert sent < 8 * 1024 * 1024
    assert await healthy(api)


@pytest.mark.parametrize(
    "partial",
    [
        b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Slow: ",  # the head never ends
        b"POST /graphql HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"q',  # the body never ends
    ],
    ids=["half-sent-head", "half-sent-body"],
)
async def test_a_half_sent_request_is_answered_408_and_closed(api: str, partial: bytes) -> None:
    async with connection(api) as (reader, writer):
        writer.write(partial)
        await writer.drain()
        assert await healthy(api)  # the stalled request holds nothing up
        status, headers, body = await answer(reader)  # the server closes: read() returns
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["errors"][0]["extensions"]["reason"] == "READ_TIMEOUT"


async def test_a_connection_that_sends_nothing_is_closed(api: str) -> None:
    async with connection(api) as (reader, _writer):
        assert await asyncio.wait_for(reader.read(), timeout=WAIT_S) == b""


async def test_keep_alive_requests_and_websockets_outlive_the_read_timeout(
    api: str, token: Callable[..., str]
) -> None:
    # The deadline is per request: a kept-alive connection's next request, and an upgraded
    # WebSocket, are not cut off by it.
    async with httpx.AsyncClient(base_url=api, timeout=WAIT_S) as client:
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200
        async with WsClient(api, token("alice")) as ws:
            await asyncio.sleep(READ_TIMEOUT_S * 2)  # the scenario: longer than the deadline
            operation = await ws.subscribe("subscription { uploadCompleted { mediaId } }")
            assert operation
