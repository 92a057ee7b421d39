"""The composition root of the worker process: the runtime, the SQS loop, the periodic jobs and
the worker's own /metrics port.

Nothing here, nor anything it imports, loads Strawberry, Starlette or uvicorn: the worker serves
no GraphQL and no HTTP besides Prometheus's (tests/unit/test_roots.py starts this import path in
a fresh interpreter and checks `sys.modules`)."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack

from infra.aws.clients import queue_urls
from infra.aws.sqs_worker import SqsWorker
from infra.observability.metrics import serving_metrics
from infra.roots.runtime import Runtime, open_runtime
from infra.roots.scheduler import Job, Scheduler
from infra.settings import Settings

log = logging.getLogger("mediagraph.worker")

SWEEP_EVERY_S = 60.0


def worker_jobs(runtime: Runtime, worker: SqsWorker) -> list[Job]:
    """The worker's periodic jobs: what used to run between two long polls."""
    settings = runtime.settings

    async def sweep() -> None:
        removed = await runtime.processing.sweep_expired()
        if removed:
            log.info("expired uploads removed", extra={"count": removed})

    async def purge() -> None:
        purged = await runtime.retention.purge_due()
        if purged:
            log.info("deleted media purged", extra={"count": purged})

    jobs = [
        Job("sweep", SWEEP_EVERY_S, sweep),
        Job("queue-depths", SWEEP_EVERY_S, worker.refresh_queue_depths),
    ]
    if settings.is_home_region:
        # Deletes race the home region's writes across the global table: the home region purges.
        jobs.append(Job("purge", settings.purge_every_s, purge))
    return jobs


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM, or until `stop` is set by an owner that handles signals itself."""
    if stop is None:
        stop = _stop_on_signals()
    queue_url, dlq_url = await queue_urls(settings.aws)
    async with AsyncExitStack() as stack:
        runtime = await stack.enter_async_context(open_runtime(settings, listen=False))
        worker = SqsWorker(
            runtime.clients.sqs,
            queue_url,
            runtime.processing,
            wait_s=settings.worker_wait_s,
            batch=settings.worker_batch,
            concurrency=settings.effective_worker_concurrency,
            dlq_url=dlq_url,
            outage_tolerance_s=settings.worker_outage_tolerance_s,
            # Work in hand renews its own visibility: a worker that dies costs this long.
            visibility_timeout_s=settings.queue_visibility_timeout_s,
        )
        stack.enter_context(serving_metrics(settings.metrics_host, settings.worker_metrics_port))
        await stack.enter_async_context(Scheduler(worker_jobs(runtime, worker)))
        task = asyncio.create_task(worker.run())
        log.info("worker started", extra={"queue": settings.queue})
        await stop.wait()
        await stop_worker(worker, task, settings.worker_shutdown_grace_s)
    log.info("worker stopped")


async def stop_worker(worker: SqsWorker, task: asyncio.Task[None], grace_s: float) -> None:
    """Messages in hand get `grace_s` to finish; then they go back to the queue, nothing lost."""
    worker.stop()  # receive no more; the current long poll ends within wait_s
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=grace_s)
    except TimeoutError:
        log.warning("grace period over; returning unfinished messages to the queue")
        worker.abandon()
        await task


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
