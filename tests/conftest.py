"""Fixtures that start real things: moto in server mode on a free port, a real Redis
(a database and a key/channel prefix of the tests' own), the API under uvicorn, the worker."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
import redis
from redis.cluster import RedisCluster
from ulid import ULID

from infra.aws.clients import AwsClients, open_clients
from infra.aws.embedded import free_port, moto_server
from infra.aws.resources import Resources, ensure_resources
from infra.aws.sqs_worker import SqsWorker
from infra.identity.jwt import issue_dev_token
from infra.observability.logs import JsonFormatter
from infra.observability.metrics import metrics_listener
from infra.roots.runtime import Runtime, open_runtime
from infra.settings import Settings
from tests.redis_cluster import private_redis_cluster
from tests.redis_process import RedisProcess
from tests.servers import serving

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/13"


@contextlib.contextmanager
def captured_logs(level: int) -> Iterator[io.StringIO]:
    """Every record from `level` up, through the production formatter, as `configure_logging`
    sets it up."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture(scope="session")
def metrics_url() -> Iterator[str]:
    """/metrics of this process, on its own loopback listener as `mediagraph serve` runs it
    (the API's port does not serve it)."""
    with metrics_listener("127.0.0.1", 0) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The shared Redis if reachable; else a private redis-server on a free port; else a clear stop."""
    url = os.environ.get("MEDIAGRAPH_TEST_REDIS_URL", DEFAULT_TEST_REDIS)
    if _reachable(url):
        yield url
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.exit(
            f"Redis is not reachable at {url} and no redis-server is installed: "
            "start Redis or set MEDIAGRAPH_TEST_REDIS_URL",
            returncode=3,
        )
    with private_redis() as private_url:
        yield private_url


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A Redis Cluster of three masters of the tests' own (tests/redis_cluster.py), started the
    first time a test asks for it."""
    with private_redis_cluster() as cluster:
        yield cluster.url


@pytest.fixture(params=["redis", "redis-cluster"])
def any_redis(request: pytest.FixtureRequest) -> tuple[str, bool]:
    """(url, is a cluster): a test taking it runs on one Redis, then on a Redis Cluster."""
    if request.param == "redis-cluster":
        return request.getfixturevalue("redis_cluster_url"), True
    return request.getfixturevalue("redis_url"), False


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of the test's own, on a free port, in a temporary directory."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="mg-redis-")
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not _reachable(url):
            if time.monotonic() > deadline:
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def make_settings(moto_endpoint: str, redis_url: str, **overrides: object) -> Settings:
    suffix = str(ULID()).lower()[-10:]
    values: dict[str, object] = {
        "aws_endpoint_url": moto_endpoint,
        "bucket": f"mg-test-{suffix}",
        "table": f"mg-test-{suffix}",
        "queue": f"mg-test-{suffix}",
        "dlq": f"mg-test-{suffix}-dlq",
        "redis_url": redis_url,
        "redis_prefix": f"mgtest:{suffix}:",
        "jwt_secret": TEST_SECRET,
        "max_receive_count": 2,
        "queue_visibility_timeout_s": 1,
        "worker_wait_s": 1,
        "max_upload_bytes": 10 * 1024 * 1024,
        # Every root field, reads included, draws from these buckets: tests that poll must not
        # run out. The rate-limit tests set their own.
        "rate_limit_user_burst": 100_000,
        "rate_limit_ip_burst": 100_000,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]  # pydantic validates at runtime


def isolated_settings(moto_endpoint: str, redis_url: str, **overrides: object) -> Iterator[Settings]:
    """Settings of one test (its own bucket, table, queues and Redis prefix); afterwards, remove
    the Redis keys under that prefix, and only those. Module fixtures `yield from` it."""
    settings = make_settings(moto_endpoint, redis_url, **overrides)
    yield settings
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(redis_url)
        for key in cluster.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
            cluster.delete(key)  # one by one: the keys of one DEL must share a slot
        cluster.close()
        return
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{settings.redis_prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_url)


@pytest.fixture
async def aws(settings: Settings) -> AsyncIterator[AwsClients]:
    async with AsyncExitStack() as stack:
        yield await open_clients(settings.aws, stack)


@pytest.fixture
async def resources(aws: AwsClients, settings: Settings) -> Resources:
    resources = await ensure_resources(aws, settings.aws)
    # Drop the s3:TestEvent that configuring the notification sends.
    await aws.sqs.purge_queue(QueueUrl=resources.queue_url)
    return resources


@pytest.fixture
async def runtime(settings: Settings, resources: Resources) -> AsyncIterator[Runtime]:
    async with open_runtime(settings) as runtime:
        yield runtime


@dataclass
class Worker:
    worker: SqsWorker
    task: asyncio.Task[None]


@pytest.fixture
async def worker(runtime: Runtime, resources: Resources) -> AsyncIterator[SqsWorker]:
    sqs_worker = SqsWorker(
        runtime.clients.sqs, resources.queue_url, runtime.processing, wait_s=1, retry_base_s=0
    )
    task = asyncio.create_task(sqs_worker.run())
    yield sqs_worker
    sqs_worker.stop()
    await asyncio.wait_for(task, timeout=15)


@pytest.fixture
async def api(settings: Settings, resources: Resources) -> AsyncIterator[str]:
    """The real app under uvicorn on a free port; yields its base URL."""
    async with serving(settings) as url:
        yield url


@pytest.fixture
def token(settings: Settings) -> Callable[..., str]:
    def make(user: str = "alice", **kwargs: object) -> str:
        return issue_dev_token(settings.tokens, user, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A redis-server of the test's own on a free port, for tests that stop, wipe or restart
    Redis: the shared one is never touched."""
    process = RedisProcess()
    process.start()
    yield process
    process.close()


PART = 5 * 1024 * 1024  # S3's minimum part size: here also the multipart threshold


def multipart_settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    """Isolated settings where a file above one 5 MiB part goes multipart (the JS client's and the
    browser's tests); module fixtures `yield from` it."""
    yield from isolated_settings(
        moto_endpoint,
        redis_url,
        max_upload_bytes=64 * 1024 * 1024,
        multipart_threshold_bytes=PART,
        multipart_part_bytes=PART,
    )
