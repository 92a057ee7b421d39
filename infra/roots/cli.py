"""The composition root of the command line, `mediagraph`: serve (infra/roots/app.py), worker
(infra/roots/worker.py), dev (infra/roots/dev.py), and the one-shot commands here: init-resources,
token, sweep, purge, reconcile, dlq."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from contextlib import AsyncExitStack
from typing import Any

from pydantic import ValidationError

from infra.aws.clients import open_clients, queue_urls
from infra.aws.resources import ensure_resources
from infra.identity.jwt import issue_dev_token
from infra.observability.logs import configure_logging
from infra.roots.runtime import open_runtime
from infra.settings import ConfigurationError, Settings, describe_errors

log = logging.getLogger("mediagraph.cli")


async def init_resources(settings: Settings) -> None:
    async with AsyncExitStack() as stack:
        clients = await open_clients(settings.aws, stack)
        resources = await ensure_resources(clients, settings.aws)
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
    queue_url, dlq_url = await queue_urls(settings.aws)
    async with AsyncExitStack() as stack:
        sqs = (await open_clients(settings.aws, stack)).sqs
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
        # Each process imports its own root only: the worker never loads the API's Strawberry,
        # Starlette and uvicorn (tests/unit/test_roots.py), nor moto outside `dev`.
        if args.command == "dev":
            from infra.roots.dev import dev

            asyncio.run(dev(args.host, args.port))
        elif args.command == "serve":
            from infra.roots.app import serve

            serve(Settings(), host=args.host, port=args.port)
        elif args.command == "worker":
            from infra.roots.worker import run_worker

            asyncio.run(run_worker(Settings()))
        elif args.command == "init-resources":
            asyncio.run(init_resources(Settings()))
        elif args.command == "token":
            print(issue_dev_token(Settings().tokens, args.user, ttl_s=args.ttl, roles=tuple(args.role)))
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
