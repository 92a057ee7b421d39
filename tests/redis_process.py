"""A redis-server of a test's own, on a free port: what fault tests stop, wipe and restart.
The shared Redis (settings.redis_url of the other tests) is never touched by them."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

import redis

from infra.aws.embedded import free_port


class RedisProcess:
    """A redis-server of this test's own that can be stopped and started on the same port."""

    def __init__(self, *, persistent: bool = False) -> None:
        # persistent: an append-only file synced on every write, so a stop and start keeps
        # every key (a restart, a failover to an up-to-date replica); otherwise a restart
        # loses everything.
        self.persistent = persistent
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mg-redis-restart-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                self.dir,
                *(["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else []),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=1).ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        if self.process is not None:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def wipe(self) -> None:
        """Lose every key, as a restart without persistence would."""
        redis.Redis.from_url(self.url).flushall()
