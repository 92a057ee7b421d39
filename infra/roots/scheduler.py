"""The periodic jobs of a process, run by one scheduler: the worker's sweep of expired uploads,
purge of deleted media and queue-depth gauges; the API's flush of view counts.

Each job runs in its own task, first at start and then `every_s` after the previous run ended
(a run never overlaps the next one, and a slow job delays only itself). A run that fails is
logged and the next one runs as planned: these jobs are idempotent and resume where they
stopped. A job marked `at_stop` runs once more when the scheduler stops, so what it moves
(counted views) is not lost at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

log = logging.getLogger("mediagraph.scheduler")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every_s: float
    run: Callable[[], Awaitable[object]]
    at_stop: bool = False  # run once more when the scheduler stops


class Scheduler:
    """`async with Scheduler(jobs):` runs them until the block ends."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = tuple(jobs)
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Scheduler:
        self._tasks = [asyncio.create_task(self._every(job), name=f"job:{job.name}") for job in self.jobs]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for job in self.jobs:
            if job.at_stop:
                await _run_once(job)

    async def _every(self, job: Job) -> None:
        while True:
            await _run_once(job)
            await asyncio.sleep(job.every_s)


async def _run_once(job: Job) -> None:
    try:
        await job.run()
    except Exception:
        log.exception("periodic job failed; it runs again at its next time", extra={"job": job.name})
