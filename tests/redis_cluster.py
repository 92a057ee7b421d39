"""A Redis Cluster of the tests' own: three masters (Debian's redis-server in cluster mode) on free
ports, each with an explicit cluster-bus port that CLUSTER MEET is told (it would otherwise assume
port + 10000). Never the shared Redis."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import redis

from infra.aws.embedded import free_port

SLOTS = 16384
MASTERS = 3


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=5)


def _command(port: int, *args: object) -> object:
    return _client(port).execute_command(*args)  # type: ignore[no-untyped-call]  # unannotated in redis-py


def _wait(condition_name: str, check: object, timeout: float = 30) -> None:
    """Poll `check()` until it holds (a bound on the wait, not a measurement)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]  # a zero-argument callable
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"private Redis Cluster: {condition_name} not reached in {timeout}s")
        time.sleep(0.05)


@contextlib.contextmanager
def private_redis_cluster() -> Iterator[str]:
    """Start the cluster, assign every slot, join the nodes, wait for cluster_state:ok on every
    node; yield a URL of one of its nodes (the cluster client discovers the others)."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed: run `make system-deps`")
    workdir = tempfile.mkdtemp(prefix="mg-redis-cluster-")
    nodes = [(free_port(), free_port()) for _ in range(MASTERS)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port, bus_port in nodes:
            processes.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        str(port),
                        "--cluster-port",
                        str(bus_port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"nodes-{port}.conf",
                        "--cluster-node-timeout",
                        "5000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        workdir,
                    ],
                    stdout=subprocess.DEVNULL,
                )
            )
        for port, _ in nodes:
            _wait(f"node {port} answering", lambda port=port: _client(port).ping())
        share = SLOTS // MASTERS
        for index, (port, _) in enumerate(nodes):
            first = index * share
            last = SLOTS - 1 if index == MASTERS - 1 else first + share - 1
            _command(port, "CLUSTER", "ADDSLOTSRANGE", first, last)
        first_port = nodes[0][0]
        for port, bus_port in nodes[1:]:
            # The bus port explicitly: CLUSTER MEET would otherwise assume port + 10000.
            _command(first_port, "CLUSTER", "MEET", "127.0.0.1", port, bus_port)

        def all_ok() -> bool:
            for port, _ in nodes:
                info = _command(port, "CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
                if fields.get("cluster_state") != "ok" or fields.get("cluster_known_nodes") != str(MASTERS):
                    return False
            return True

        _wait("cluster_state:ok on every node", all_ok)
        yield f"redis://127.0.0.1:{first_port}/0"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
