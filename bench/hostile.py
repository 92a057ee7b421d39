"""Hostile input (docs/security.md): what the hostile corpus (tests/hostile.py) costs, with the
parser and validation caches bypassed and the limits at their shipped values.

1. Validation time per token of each corpus document ÷ that of a normal `media(id)` query
   (bench/media_app.QUERY), in this process: goal <= 5 for the worst document.
2. Event-loop CPU per request: the most CPU time one corpus request takes on the loop's thread
   ÷ that of `media(id)`, the app in this process (robust to other processes' load), with the
   production profile's document workers as in the server of 3.
3. /healthz p99 while one anonymous client sends the corpus (documents and malformed bodies) in
   a loop ÷ /healthz p99 idle, against one server process (bench/hostile_app.py) whose rate
   budget no client reaches, so every document gets to validation: goal <= 2. The corpus
   client runs in its own process (as an attacker would) and its answers are counted by code.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import httpx
from graphql import GraphQLSyntaxError, parse, specified_rules

from bench.harness import free_port, median, percentile, subprocess_server
from bench.hostile_app import build_app, document_workers
from bench.media_app import MEDIA_ID, QUERY
from schema.document_guard import token_count
from schema.document_workers import DocumentWorkers
from schema.documents import validate
from schema.limits import MAX_TOKENS, RULES, document_limits, with_metered_overlap
from schema.root import build_schema
from services.core.pagination import MAX_PAGE_SIZE
from tests.hostile import BODIES, DOCUMENTS, Hostile

ROUNDS = 15  # timings per document; the fastest is kept


def _validation_us_per_token(query: str) -> tuple[float, int] | None:
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError:
        return None  # refused by the parser (token cap, nesting): measured as parse time below
    tokens = token_count(document) or 1
    schema = build_schema()._schema
    rules = (*with_metered_overlap(tuple(specified_rules)), *RULES)
    limits = document_limits(MAX_PAGE_SIZE)
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        validate(schema, document, rules, limits)
        timings.append(time.perf_counter() - started)
    # The fastest of the rounds: the code is deterministic, so anything slower is other
    # processes' load (this 2-core machine is shared), which the minimum leaves out.
    return min(timings) * 1e6 / tokens, tokens


def validation_figures() -> dict[str, Any]:
    baseline = _validation_us_per_token(QUERY)
    assert baseline is not None
    per_document: dict[str, float] = {}
    for hostile in DOCUMENTS:
        measured = _validation_us_per_token(hostile.query)
        if measured is not None:
            per_document[hostile.name] = round(measured[0], 2)
    worst = max(per_document, key=per_document.__getitem__)
    return {
        "media_query_us_per_token": round(baseline[0], 2),
        "worst_document": worst,
        "worst_us_per_token": per_document[worst],
        "ratio": round(per_document[worst] / baseline[0], 2),
        "goal": "<= 5",
        "per_document_us_per_token": per_document,
    }


def _body(hostile: Hostile) -> bytes:
    body: dict[str, Any] = {"query": hostile.query, **hostile.extra}
    if hostile.variables is not None:
        body["variables"] = hostile.variables
    text = json.dumps(body)
    if hostile.raw_variables is not None:
        text = text[:-1] + f', "variables": {hostile.raw_variables}}}'
    return text.encode()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def _post(port: int, body: bytes) -> bytes:
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def healthz_latencies(port: int, seconds: float) -> list[float]:
    """One client asking /healthz back to back over a keep-alive connection, every 5 ms."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, _ = await _exchange(reader, writer, request)
            assert status == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)
    finally:
        writer.close()
    return latencies


async def corpus_loop(port: int, stop: asyncio.Event, answers: Counter[str]) -> int:
    """The corpus, again and again, on one keep-alive connection (a new one after a refusal that
    closes it); each answer counted by HTTP status and error code."""
    requests = [_post(port, _body(hostile)) for hostile in DOCUMENTS] + [
        _post(port, raw) for _, raw in BODIES
    ]
    sent = 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop.is_set():
            for request in requests:
                try:
                    status, body = await _exchange(reader, writer, request)
                except (asyncio.IncompleteReadError, ConnectionError):
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    answers["connection closed"] += 1
                    continue
                sent += 1
                try:
                    codes = sorted(
                        {error["extensions"]["code"] for error in json.loads(body).get("errors") or []}
                    )
                except (ValueError, KeyError, AttributeError):
                    codes = ["no GraphQL error body"]
                answers[f"{status} {','.join(codes) or 'no error'}"] += 1
                if stop.is_set():
                    break
    finally:
        writer.close()
    return sent


def _corpus_client(port: int) -> subprocess.Popen[bytes]:
    """The corpus client in a process of its own, as an attacker is: in this process it shared
    the /healthz probe's event loop, and a probe answer that arrived while the client decoded a
    corpus answer waited for it, which counted the client's work as the server's."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench.hostile", "--corpus-client", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


async def _corpus_client_main(port: int) -> None:
    """Sends the corpus until its stdin closes, then prints what it sent and got, as JSON."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def told_to_stop() -> None:
        loop.remove_reader(sys.stdin.fileno())
        stop.set()

    loop.add_reader(sys.stdin.fileno(), told_to_stop)
    answers: Counter[str] = Counter()
    sent = await corpus_loop(port, stop, answers)
    print(json.dumps({"sent": sent, "answers": answers}), flush=True)


async def healthz_figures(redis_url: str, seconds: float = 3.0, rounds: int = 3) -> dict[str, Any]:
    """Idle and under-corpus phases interleaved (`rounds` of each), so that the load of other
    processes on a shared machine drifts over both alike; the median of each phase's p99. The
    probe runs here, the corpus client in its own process."""
    port = free_port()
    idle_p99: list[float] = []
    loaded_p99: list[float] = []
    samples = {"idle": 0, "under_corpus": 0}
    answers: Counter[str] = Counter()
    sent = 0
    with subprocess_server(["-m", "bench.hostile_app", "--port", str(port), "--redis-url", redis_url], port):
        await healthz_latencies(port, 1.0)  # warm-up
        for _ in range(rounds):
            idle = await healthz_latencies(port, seconds)
            client = _corpus_client(port)
            await asyncio.sleep(1.0)  # the client has started and its loop is under way
            loaded = await healthz_latencies(port, seconds)
            output, _ = await asyncio.to_thread(client.communicate, b"stop\n")
            report = json.loads(output)
            sent += report["sent"]
            answers.update(report["answers"])
            idle_p99.append(percentile(idle, 99))
            loaded_p99.append(percentile(loaded, 99))
            samples["idle"] += len(idle)
            samples["under_corpus"] += len(loaded)
    return {
        "healthz_p99_idle_ms": round(median(idle_p99) * 1000, 2),
        "healthz_p99_under_corpus_ms": round(median(loaded_p99) * 1000, 2),
        "ratio": round(median(loaded_p99) / median(idle_p99), 2),
        "goal": "<= 2",
        "healthz_samples": samples,
        "corpus_requests": sent,
        "answers_by_code": dict(sorted(answers.items())),
    }


async def loop_cpu_figures(redis_url: str, rounds: int = 3) -> dict[str, Any]:
    """CPU time each request takes on the event loop's thread (time.thread_time: work moved to
    a worker thread, and waiting, not counted), the app called in this process: a measure of
    how long one request can hold the loop that CPU contention from other processes does not
    inflate as it does wall-clock latency. The median of `rounds` per request."""
    # As the bench server: the production profile's document workers (bench/hostile_app.py).
    workers = document_workers()
    if workers is not None:
        await workers.start()
    try:
        return await _loop_cpu(redis_url, workers, rounds)
    finally:
        if workers is not None:
            await workers.aclose()


async def _loop_cpu(redis_url: str, workers: DocumentWorkers | None, rounds: int) -> dict[str, Any]:
    app = await asyncio.to_thread(build_app, redis_url, workers)  # it seeds its repository with asyncio.run
    requests = [(hostile.name, _body(hostile)) for hostile in DOCUMENTS] + list(BODIES)
    baseline = json.dumps({"query": QUERY, "variables": {"id": MEDIA_ID}}).encode()
    headers = {"Content-Type": "application/json"}
    spent: dict[str, list[float]] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for _ in range(rounds):
            for name, body in [("media(id)", baseline), *requests]:
                started = time.thread_time()
                await client.post("/graphql", content=body, headers=headers)
                spent.setdefault(name, []).append(time.thread_time() - started)
    per_request = {name: round(median(times) * 1000, 2) for name, times in spent.items()}
    media = per_request.pop("media(id)")
    worst = max(per_request, key=per_request.__getitem__)
    return {
        "document_workers": workers.processes if workers is not None else 0,
        "media_query_ms": media,
        "worst_request": worst,
        "worst_ms": per_request[worst],
        "ratio": round(per_request[worst] / media, 2),
        "per_request_ms": per_request,
    }


async def section(redis_url: str) -> dict[str, Any]:
    validation = validation_figures()
    print(
        f"hostile: validation µs/token, worst corpus document ({validation['worst_document']}) "
        f"{validation['worst_us_per_token']} ÷ media(id) {validation['media_query_us_per_token']} "
        f"= {validation['ratio']} (goal <= 5)"
    )
    loop_cpu = await loop_cpu_figures(redis_url)
    print(
        f"hostile: event-loop CPU per request, worst ({loop_cpu['worst_request']}) {loop_cpu['worst_ms']} ms "
        f"÷ media(id) {loop_cpu['media_query_ms']} ms = {loop_cpu['ratio']}"
    )
    healthz = await healthz_figures(redis_url)
    print(
        f"hostile: /healthz p99 under the corpus loop {healthz['healthz_p99_under_corpus_ms']} ms ÷ idle "
        f"{healthz['healthz_p99_idle_ms']} ms = {healthz['ratio']} (goal <= 2)"
    )
    print(f"hostile: the corpus client's answers: {healthz['answers_by_code']}")
    return {"validation": validation, "loop_cpu": loop_cpu, "healthz": healthz}


if __name__ == "__main__" and sys.argv[1:2] == ["--corpus-client"]:
    asyncio.run(_corpus_client_main(int(sys.argv[2])))
