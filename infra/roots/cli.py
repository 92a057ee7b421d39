"""`mediagraph`: serve, worker, dev, init-resources, token, sweep, purge, reconcile, dlq."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from infra.aws.clients import open_clients
from infra.aws.resources import ensure_resources
from infra.aws.sqs_worker import SqsWorker
from infra.http.server import ApiServer, server_config
from infra.identity.dev_sign_in import PATH as SIGN_IN_PATH
from infra.identity.dev_sign_in import is_loopback
from infra.identity.jwt import issue_dev_token
from infra.observability.logs import configure_logging
from infra.observability.metrics import metrics_listener
from infra.roots.app import create_app
from infra.roots.runtime import open_runtime
from infra.settings import ConfigurationError, Settings, describe_errors

log = logging.getLogger("mediagraph.cli")


async def _queue_urls(settings: Settings) -> tuple[str, str]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        clients = await open_clients(settings, stack)
        queue = (await clients.sqs.get_queue_url(QueueName=settings.queue))["QueueUrl"]
        dlq = (await clients.sqs.get_queue_url(QueueName=settings.dlq))["QueueUrl"]
        return queue, dlq


async def init_resources(settings: Settings) -> None:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        clients = await open_clients(settings, stack)
        resources = await ensure_resources(clients, settings)
    print(
        json.dumps(
            {
                "bucket": settings.bucket,
                "table": settings.table,
                "queue": resources.queue_url,
                "dlq": resources.dlq_url,
            }
        )
    )


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM, or until `stop` is set by an owner that handles signals itself."""
    queue_url, dlq_url = await _queue_urls(settings)
    async with open_runtime(settings, listen=False) as runtime:
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
            # Purges (like the expired-upload sweep) run in the home region only.
            retention=runtime.retention if settings.is_home_region else None,
            purge_every_s=settings.purge_every_s,
        )
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        with serving_metrics(settings, settings.worker_metrics_port):
            task = asyncio.create_task(worker.run())
            log.info("worker started", extra={"queue": settings.queue})
            await stop.wait()
            await stop_worker(worker, task, settings.worker_shutdown_grace_s)
        log.info("worker stopped")


@contextlib.contextmanager
def serving_metrics(settings: Settings, port: int) -> Iterator[None]:
    """/metrics on a listener of its own (MEDIAGRAPH_METRICS_HOST), or nothing when `port` is 0."""
    if not port:
        yield
        return
    with metrics_listener(settings.metrics_host, port) as bound:
        log.info("metrics listening", extra={"url": f"http://{settings.metrics_host}:{bound}/metrics"})
        yield


async def stop_worker(worker: SqsWorker, task: asyncio.Task[None], grace_s: float) -> None:
    """Messages in hand get `grace_s` to finish; then they go back to the queue, nothing lost."""
    worker.stop()  # receive no more; the current long poll ends within wait_s
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=grace_s)
    except TimeoutError:
        log.warning("grace period over; returning unfinished messages to the queue")
        worker.abandon()
        await task


async def sweep(settings: Settings) -> None:
    async with open_runtime(settings, listen=False) as runtime:
        removed = await runtime.processing.sweep_expired(limit=1000)
    print(json.dumps({"expired_uploads_removed": removed}))


async def purge(settings: Settings) -> None:
    if not settings.is_home_region:
        # Deletes race the home region's writes across the global table: the home region purges.
        print(json.dumps({"media_purged": 0, "skipped": "not the home region"}))
        return
    async with open_runtime(settings, listen=False) as runtime:
        total = 0
        while purged := await runtime.retention.purge_due(limit=100):
            total += purged
    print(json.dumps({"media_purged": total}))


async def reconcile(settings: Settings, *, repair: bool) -> int:
    async with open_runtime(settings, listen=False) as runtime:
        report = await runtime.reconcile.run(repair=repair)
    print(json.dumps(report.to_record()))
    # Non-zero when something was found and left as it was: usable as a monitoring check.
    return 0 if report.clean or repair else 1


async def dlq(settings: Settings, action: str, limit: int) -> None:
    queue_url, dlq_url = await _queue_urls(settings)
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        sqs = (await open_clients(settings, stack)).sqs
        moved = 0
        while moved < limit:
            response = await sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(10, limit - moved),
                WaitTimeSeconds=1,
                VisibilityTimeout=30 if action == "redrive" else 1,
            )
            messages: list[dict[str, Any]] = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                moved += 1
                if action == "list":
                    print(json.dumps({"id": message["MessageId"], "body": message["Body"][:2000]}))
                    continue
                await sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
                await sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            if action == "list":
                break  # listed messages become visible again on their own
        print(json.dumps({"action": action, "messages": moved}), file=sys.stderr)


def _ensure_dev_secret(env_file: Path) -> None:
    """Development only: a random HS256 secret kept in .env, so tokens survive restarts."""
    if os.environ.get("MEDIAGRAPH_JWT_SECRET"):
        return
    text = env_file.read_text() if env_file.exists() else ""
    if "MEDIAGRAPH_JWT_SECRET=" not in text:
        with env_file.open("a") as handle:
            handle.write(f"\nMEDIAGRAPH_JWT_SECRET={secrets.token_urlsafe(48)}\n")


async def dev(host: str, port: int) -> None:
    from infra.aws.embedded import moto_server

    _ensure_dev_secret(Path(".env"))
    endpoint = os.environ.get("MEDIAGRAPH_AWS_ENDPOINT_URL")
    with moto_server() if not endpoint else _nullcontext(endpoint) as endpoint_url:
        # One process: the API's metrics listener shows the worker's series too.
        settings = Settings(aws_endpoint_url=endpoint_url, worker_wait_s=2, worker_metrics_port=0)
        await init_resources(settings)
        token = issue_dev_token(settings, "alice", ttl_s=24 * 3600)
        # Anyone who can reach the sign-in gets a token: it is offered on loopback only.
        sign_in = is_loopback(host)
        app = create_app(settings, dev_sign_in=sign_in)
        server = _QuietServer(server_config(app, settings, host=host, port=port))
        stop = asyncio.Event()

        def shut_down() -> None:
            server.should_exit = True
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, shut_down)
        worker = asyncio.create_task(run_worker(settings, stop=stop))
        print(
            f"\n  GraphiQL:   http://{host}:{port}/graphql\n"
            f"  moto (AWS): {endpoint_url}\n"
            + (
                f"  metrics:    http://{settings.metrics_host}:{settings.metrics_port}/metrics\n"
                if settings.metrics_port
                else ""
            )
            + f"  token (alice, 24 h):\n    {token}\n"
            '  In GraphiQL\'s headers tab: {"Authorization": "Bearer <token>"}\n'
            "  More tokens: .venv/bin/mediagraph token --user bob\n"
            + (
                f'  Browsers: POST http://{host}:{port}{SIGN_IN_PATH} {{"user": "bob"}} -> a token\n'
                if sign_in
                else f"  {SIGN_IN_PATH} is off: --host {host} is not a loopback address\n"
            )
            + "  Ctrl-C stops everything.\n",
            flush=True,
        )
        try:
            with serving_metrics(settings, settings.metrics_port):
                await server.serve()
        finally:
            stop.set()
            await worker


class _QuietServer(ApiServer):
    """uvicorn re-raises the signal after serving; `dev` owns signals and stops API and worker together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _nullcontext:
    def __init__(self, value: str) -> None:
        self.value = value

    def __enter__(self) -> str:
        return self.value

    def __exit__(self, *exc: object) -> None:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mediagraph", description="The mediagraph media service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the GraphQL API")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    commands.add_parser("worker", help="process S3 events from SQS")
    dev_cmd = commands.add_parser("dev", help="embedded moto + API + worker, for development")
    dev_cmd.add_argument("--host", default="127.0.0.1")
    dev_cmd.add_argument("--port", type=int, default=8000)
    commands.add_parser("init-resources", help="create or update the bucket, table and queues")
    token_cmd = commands.add_parser("token", help="print a development JWT (HS256 only)")
    token_cmd.add_argument("--user", required=True)
    token_cmd.add_argument("--ttl", type=int, default=3600, help="seconds")
    token_cmd.add_argument("--role", action="append", default=[])
    commands.add_parser("sweep", help="remove PENDING uploads past their expiry")
    commands.add_parser("purge", help="remove deleted media past its retention window, for good")
    reconcile_cmd = commands.add_parser("reconcile", help="report objects and records that disagree")
    reconcile_cmd.add_argument("--repair", action="store_true", help="also remove or purge what is orphaned")
    dlq_cmd = commands.add_parser("dlq", help="show or replay dead-lettered S3 events")
    dlq_cmd.add_argument("action", choices=["list", "redrive"])
    dlq_cmd.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)

    configure_logging(os.environ.get("MEDIAGRAPH_LOG_LEVEL", "INFO"))
    try:
        if args.command == "dev":
            asyncio.run(dev(args.host, args.port))
        elif args.command == "serve":
            settings = Settings()
            app = create_app(settings)
            with serving_metrics(settings, settings.metrics_port):
                ApiServer(server_config(app, settings, host=args.host, port=args.port)).run()
        elif args.command == "worker":
            asyncio.run(run_worker(Settings()))
        elif args.command == "init-resources":
            asyncio.run(init_resources(Settings()))
        elif args.command == "token":
            print(issue_dev_token(Settings(), args.user, ttl_s=args.ttl, roles=tuple(args.role)))
        elif args.command == "sweep":
            asyncio.run(sweep(Settings()))
        elif args.command == "purge":
            asyncio.run(purge(Settings()))
        elif args.command == "reconcile":
            sys.exit(asyncio.run(reconcile(Settings(), repair=args.repair)))
        elif args.command == "dlq":
            asyncio.run(dlq(Settings(), args.action, args.limit))
    except KeyboardInterrupt:
        pass
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        # Names the setting, never its value: the value may be a secret (docs/configuration.md).
        for line in describe_errors(exc):
            print(f"configuration error: {line}", file=sys.stderr)
        sys.exit(2)
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
