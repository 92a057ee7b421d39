"""`make bench`: run every benchmark once and print each figure beside its same-run baseline.

Each section is a module of bench/ with `async def section(redis_url) -> dict` that prints its own
figures and returns them for bench/results/latest.json. `BENCH_ONLY=name,name` runs some of them."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

# One line per section, in the order they run. A new benchmark adds its module name here.
SECTIONS = [
    "media_query",
    "read_world",
    "core_path",
    "realtime",
    "frontend",
    "pipeline",
    "faults",
    "hostile",
]


async def main() -> None:
    redis_url = os.environ.get("MEDIAGRAPH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    only = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
    results: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    for name in SECTIONS:
        if only and name not in only:
            continue
        module = importlib.import_module(f"bench.{name}")
        results[name] = await module.section(redis_url)
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
