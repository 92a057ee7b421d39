"""The composition roots: what each process imports, wiring that no line order can break, and the
scheduler that runs the periodic jobs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.roots.scheduler import Job, Scheduler

ROOT = Path(__file__).resolve().parents[2]
WEB_FRAMEWORKS = ("strawberry", "starlette", "uvicorn", "graphql", "moto")

# What `mediagraph worker` imports before it runs: the CLI's root, then the worker's. The
# fresh interpreter starts with nothing loaded, as the worker's container does.
WORKER_IMPORT_PATH = """
import json, sys
import infra.roots.cli
import infra.roots.worker
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _top_level_modules(code: str) -> set[str]:
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(completed.stdout))


def test_the_worker_process_loads_no_web_framework() -> None:
    loaded = _top_level_modules(WORKER_IMPORT_PATH)
    assert {"infra", "services", "aioboto3", "redis"} <= loaded  # it did import the worker
    assert loaded.isdisjoint(WEB_FRAMEWORKS), sorted(loaded & set(WEB_FRAMEWORKS))


def test_the_api_root_does_load_them() -> None:
    # The check above would pass vacuously if the names were wrong: the API's root has them all.
    loaded = _top_level_modules(WORKER_IMPORT_PATH.replace("infra.roots.worker", "infra.roots.app"))
    assert {"strawberry", "starlette", "uvicorn", "graphql"} <= loaded


def test_the_websocket_guard_and_the_fanout_are_one_handler_class() -> None:
    from infra.roots.app import MediagraphGraphQL
    from subscriptions.fanout import SharedTransportWSHandler
    from subscriptions.ws_guard import GuardedTransportWSHandler

    # Declared on the class, not assigned in __init__: nothing can run after it and replace it.
    assert MediagraphGraphQL.graphql_transport_ws_handler_class is GuardedTransportWSHandler
    assert issubclass(GuardedTransportWSHandler, SharedTransportWSHandler)
    assert "graphql_transport_ws_handler_class" not in MediagraphGraphQL.__init__.__code__.co_names


async def test_each_job_runs_at_start_and_again_after_a_failure() -> None:
    runs: dict[str, int] = {"steady": 0, "failing": 0}
    again = asyncio.Event()

    async def steady() -> None:
        runs["steady"] += 1

    async def failing() -> None:
        runs["failing"] += 1
        if runs["failing"] >= 3:
            again.set()
        raise RuntimeError("a transient failure")

    async with Scheduler([Job("steady", 3600, steady), Job("failing", 0, failing)]):
        await asyncio.wait_for(again.wait(), timeout=30)
    assert runs["steady"] == 1  # at start; its next time is an hour away
    assert runs["failing"] >= 3  # each failure logged, the job kept running


async def test_a_job_marked_at_stop_runs_once_more_when_the_scheduler_stops() -> None:
    flushed: list[str] = []
    started = asyncio.Event()

    async def flush() -> None:
        flushed.append("flush")
        started.set()

    async with Scheduler([Job("flush", 3600, flush, at_stop=True)]):
        await asyncio.wait_for(started.wait(), timeout=30)
        assert flushed == ["flush"]
    assert flushed == ["flush", "flush"]


async def test_stopping_cancels_a_run_in_progress() -> None:
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow() -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with Scheduler([Job("slow", 60, slow)]):
        await asyncio.wait_for(entered.wait(), timeout=30)
    assert cancelled.is_set()


@pytest.mark.parametrize("home", [True, False])
def test_only_the_home_region_purges(home: bool) -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from infra.roots.worker import worker_jobs

    settings = SimpleNamespace(is_home_region=home, purge_every_s=300.0)
    runtime = cast(Any, SimpleNamespace(settings=settings))
    worker = cast(Any, SimpleNamespace(refresh_queue_depths=lambda: None))
    names = {job.name for job in worker_jobs(runtime, worker)}
    assert names == ({"sweep", "queue-depths", "purge"} if home else {"sweep", "queue-depths"})
