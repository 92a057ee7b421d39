"""A Redis Cluster of the tests' own: three masters (Debian's redis-server in cluster mode) on free
ports, each with an explicit cluster-bus port that CLUSTER MEET is told (it would otherwise assume
port + 10000). Never the shared Redis."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import redis

from infra.aws.embedded import free_port

SLOTS = 16384
MASTERS = 3


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=5)


def _command(port: int, *args: object) -> object:
    return _client(port).execute_command(*args)  # type: ignore[no-untyped-call]  # unannotated in redis-py


def _wait(condition_name: str, check: Callable[[], object], timeout: float = 30) -> None:
    """Poll `check()` until it holds (a bound on the wait, not a measurement)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"private Redis Cluster: {condition_name} not reached in {timeout}s")
        time.sleep(0.05)


class RedisClusterProcesses:
    """The cluster's redis-server processes; a node can be stopped and started again on its ports
    with its data (an append-only file, written at a clean shutdown) and its cluster config."""

    def __init__(self, *, persistent: bool = False) -> None:
        self.dir = tempfile.mkdtemp(prefix="mg-redis-cluster-")
        self.ports = [(free_port(), free_port()) for _ in range(MASTERS)]
        self.persistent = persistent
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0][0]}/0"

    def start_node(self, port: int) -> None:
        bus_port = dict(self.ports)[port]
        self.processes[port] = subprocess.Popen(
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
                "yes" if self.persistent else "no",
                "--appendfilename",
                f"appendonly-{port}.aof",
                "--appenddirname",
                f"aof-{port}",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(f"node {port} answering", lambda: _client(port).ping())

    def stop_node(self, port: int) -> None:
        process = self.processes.pop(port)
        process.terminate()
        process.wait(timeout=10)

    def start(self) -> None:
        """Start every node, assign every slot, join the nodes, wait for cluster_state:ok."""
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed: run `make system-deps`")
        for port, _ in self.ports:
            self.start_node(port)
        share = SLOTS // MASTERS
        for index, (port, _) in enumerate(self.ports):
            first = index * share
            last = SLOTS - 1 if index == MASTERS - 1 else first + share - 1
            _command(port, "CLUSTER", "ADDSLOTSRANGE", first, last)
        first_port = self.ports[0][0]
        for port, bus_port in self.ports[1:]:
            # The bus port explicitly: CLUSTER MEET would otherwise assume port + 10000.
            _command(first_port, "CLUSTER", "MEET", "127.0.0.1", port, bus_port)
        self.wait_ok()

    def wait_ok(self) -> None:
        def all_ok() -> bool:
            for port, _ in self.ports:
                info = _command(port, "CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
                if fields.get("cluster_state") != "ok" or fields.get("cluster_known_nodes") != str(MASTERS):
                    return False
            return True

        _wait("cluster_state:ok on every node", all_ok)

    def close(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=10)
        self.processes.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_redis_cluster(*, persistent: bool = False) -> Iterator[RedisClusterProcesses]:
    """A started cluster; its `url` names one node (the cluster client discovers the others)."""
    cluster = RedisClusterProcesses(persistent=persistent)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
