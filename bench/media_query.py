"""Throughput through GraphQL ÷ a bare Starlette route returning the same JSON from the same
source, both in one server process (bench/media_app.py):

- media(id) from the in-process repository;
- a 50-item page (feed) from the in-process repository;
- the same page from the Redis page cache in front of it.
"""

from __future__ import annotations

from typing import Any

from bench.harness import BENCH_SECRET, free_port, median, requests_per_second, subprocess_server
from bench.media_app import MEDIA_ID, PAGE_QUERY, QUERY
from infra.identity.jwt import issue_dev_token
from infra.settings import Settings


async def _pair(
    base: str,
    bare: str,
    graphql: str,
    body: dict[str, Any],
    headers: dict[str, str],
    seconds: float,
    rounds: int,
) -> dict[str, float]:
    ours: list[float] = []
    baseline: list[float] = []
    await requests_per_second(f"{base}{bare}", json=None, headers=headers, seconds=0.5)  # warm-up
    await requests_per_second(f"{base}{graphql}", json=body, headers=headers, seconds=0.5)
    for _ in range(rounds):  # interleaved, so drift on a noisy machine hits both alike
        baseline.append(
            await requests_per_second(f"{base}{bare}", json=None, headers=headers, seconds=seconds)
        )
        ours.append(
            await requests_per_second(f"{base}{graphql}", json=body, headers=headers, seconds=seconds)
        )
    return {
        "graphql_rps": round(median(ours), 1),
        "bare_rps": round(median(baseline), 1),
        "ratio": round(median(ours) / median(baseline), 3),
    }


async def run(redis_url: str, seconds: float = 3.0, rounds: int = 3) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(_env_file=None, jwt_secret=BENCH_SECRET)
    headers = {"Authorization": f"Bearer {issue_dev_token(settings.tokens, 'bench')}"}
    with subprocess_server(["-m", "bench.media_app", "--port", str(port), "--redis-url", redis_url], port):
        media = await _pair(
            base,
            f"/bare/{MEDIA_ID}",
            "/graphql",
            {"query": QUERY, "variables": {"id": MEDIA_ID}},
            headers,
            seconds,
            rounds,
        )
        page = {"query": PAGE_QUERY}
        memory_page = await _pair(base, "/bare/page", "/graphql", page, headers, seconds, rounds)
        cached_page = await _pair(
            base, "/bare/page-cached", "/graphql-cached", page, headers, seconds, rounds
        )
    return {"media": media, "page_memory": memory_page, "page_redis_cache": cached_page}


async def section(redis_url: str) -> dict[str, Any]:
    print("GraphQL vs a bare Starlette route returning the same JSON from the same source ...", flush=True)
    queries = await run(redis_url)
    labels = {
        "media": "media(id), in-process repository",
        "page_memory": "50-item page, in-process repository",
        "page_redis_cache": "50-item page, Redis page cache",
    }
    for key, label in labels.items():
        figure = queries[key]
        print(
            f"  {label}: GraphQL {figure['graphql_rps']} req/s, bare {figure['bare_rps']} req/s, "
            f"ratio {figure['ratio']}",
            flush=True,
        )
    return queries
