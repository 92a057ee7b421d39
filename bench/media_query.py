"""media(id) requests/s through GraphQL ÷ a bare Starlette route returning the same JSON from the
same in-process repository (bench/media_app.py), both in one server process."""

from __future__ import annotations

from typing import Any

from bench.harness import BENCH_SECRET, free_port, median, requests_per_second, subprocess_server
from bench.media_app import MEDIA_ID, QUERY
from infra.jwt import issue_dev_token
from infra.settings import Settings


async def run(seconds: float = 3.0, rounds: int = 3) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(_env_file=None, jwt_secret=BENCH_SECRET)
    headers = {"Authorization": f"Bearer {issue_dev_token(settings, 'bench')}"}
    graphql_rps: list[float] = []
    bare_rps: list[float] = []
    with subprocess_server(["-m", "bench.media_app", "--port", str(port)], port):
        await requests_per_second(f"{base}/bare/{MEDIA_ID}", json=None, headers=headers, seconds=1)  # warm-up
        for _ in range(rounds):  # interleaved, so drift on a noisy machine hits both alike
            bare_rps.append(
                await requests_per_second(
                    f"{base}/bare/{MEDIA_ID}", json=None, headers=headers, seconds=seconds
                )
            )
            graphql_rps.append(
                await requests_per_second(
                    f"{base}/graphql",
                    json={"query": QUERY, "variables": {"id": MEDIA_ID}},
                    headers=headers,
                    seconds=seconds,
                )
            )
    ours, bare = median(graphql_rps), median(bare_rps)
    return {"graphql_rps": round(ours, 1), "bare_rps": round(bare, 1), "ratio": round(ours / bare, 3)}
