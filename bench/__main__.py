"""`make bench`: run every benchmark once and print each figure beside its same-run baseline."""

from __future__ import annotations

import asyncio
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from bench import core_path, media_query, realtime


async def main() -> None:
    redis_url = os.environ.get("MEDIAGRAPH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    uploads = int(os.environ.get("BENCH_UPLOADS", "100"))
    results: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print("GraphQL vs a bare Starlette route returning the same JSON from the same source ...", flush=True)
    results["media_query"] = queries = await media_query.run(redis_url)
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
    print(
        f"core path: end of PUT → uploadCompleted message, {uploads} uploads, vs bare relay ...", flush=True
    )
    results["core_path"] = core = await core_path.run(redis_url, uploads=uploads)
    print(
        f"  p50 {core['p50_ms']} ms (bare {core['bare_p50_ms']} ms, ratio {core['p50_ratio']}); "
        f"p99 {core['p99_ms']} ms (bare {core['bare_p99_ms']} ms, ratio {core['p99_ratio']})\n"
        f"  with moto behind the real runtime: media(id) {core['media_rps_moto']} req/s, "
        f"50-item myMedia page {core['page_rps_moto']} req/s (moto-bound; not comparable)",
        flush=True,
    )
    print(
        "realtime: 1,000 WebSocket subscribers of one user vs websockets.broadcast / a bare relay ...",
        flush=True,
    )
    results["realtime"] = rt = await realtime.run(redis_url)
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
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
