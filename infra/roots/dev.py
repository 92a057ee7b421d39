"""`mediagraph dev`: the embedded AWS stand-in (moto), the API and the worker in one process, for
development. Composes the two process roots; adds nothing of its own but the sign-in."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

from infra.http.server import ApiServer, server_config
from infra.identity.dev_sign_in import PATH as SIGN_IN_PATH
from infra.identity.dev_sign_in import is_loopback
from infra.identity.jwt import issue_dev_token
from infra.observability.metrics import serving_metrics
from infra.roots.app import create_app
from infra.roots.cli import init_resources
from infra.roots.worker import run_worker
from infra.settings import Settings


def _ensure_dev_secret(env_file: Path) -> None:
    """Development only: a random HS256 secret kept in .env, so tokens survive restarts."""
    if os.environ.get("MEDIAGRAPH_JWT_SECRET"):
        return
    text = env_file.read_text() if env_file.exists() else ""
    if "MEDIAGRAPH_JWT_SECRET=" not in text:
        with env_file.open("a") as handle:
            handle.write(f"\nMEDIAGRAPH_JWT_SECRET={secrets.token_urlsafe(48)}\n")


@contextlib.contextmanager
def _aws_endpoint() -> Iterator[str]:
    """MEDIAGRAPH_AWS_ENDPOINT_URL when set, an embedded moto server otherwise."""
    endpoint = os.environ.get("MEDIAGRAPH_AWS_ENDPOINT_URL")
    if endpoint:
        yield endpoint
        return
    from infra.aws.embedded import moto_server  # moto is the `local` extra: imported only here

    with moto_server() as url:
        yield url


async def dev(host: str, port: int) -> None:
    _ensure_dev_secret(Path(".env"))
    with _aws_endpoint() as endpoint_url:
        # One process: the API's metrics listener shows the worker's series too.
        settings = Settings(aws_endpoint_url=endpoint_url, worker_wait_s=2, worker_metrics_port=0)
        await init_resources(settings)
        token = issue_dev_token(settings.tokens, "alice", ttl_s=24 * 3600)
        # Anyone who can reach the sign-in gets a token: it is offered on loopback only.
        sign_in = is_loopback(host)
        app = create_app(settings, dev_sign_in=sign_in)
        server = _QuietServer(server_config(app, settings.server, host=host, port=port))
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
            with serving_metrics(settings.metrics_host, settings.metrics_port):
                await server.serve()
        finally:
            stop.set()
            await worker


class _QuietServer(ApiServer):
    """uvicorn re-raises the signal after serving; `dev` owns signals and stops API and worker together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
