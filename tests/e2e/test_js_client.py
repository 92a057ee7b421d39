"""The TypeScript client (clients/js) against the real stack: its live Node tests (upload and
COMPLETED seen over mediaStatus, delete/restore, a multipart upload resumed after a stop, cancel,
a dropped WebSocket resumed with `since`, typed errors) run with `node --test` here, against
moto, Redis, the API with the development sign-in, and the worker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from infra.aws.resources import Resources
from infra.aws.sqs_worker import SqsWorker
from infra.settings import Settings
from tests.conftest import PART, multipart_settings
from tests.media_files import photo
from tests.node import CLIENT, run_npm, run_npm_async
from tests.servers import serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from multipart_settings(moto_endpoint, redis_url)


@pytest.fixture
async def dev_api(settings: Settings, resources: Resources) -> AsyncIterator[str]:
    async with serving(settings, dev_sign_in=True) as url:
        yield url


async def test_the_client_against_the_real_api(dev_api: str, worker: SqsWorker, tmp_path: Path) -> None:
    first, second = tmp_path / "photo.jpg", tmp_path / "photo-2.jpg"
    first.write_bytes(photo(640, 480, seed=11))
    second.write_bytes(photo(640, 480, seed=12))
    run_npm(CLIENT, "run", "build")
    env = {
        "MEDIAGRAPH_API_URL": dev_api,
        "MEDIAGRAPH_JPEG": str(first),
        "MEDIAGRAPH_JPEG_2": str(second),
        "MEDIAGRAPH_PART_BYTES": str(PART),
    }
    # The worker and the API run on this event loop: node must run beside it, not block it.
    await run_npm_async(CLIENT, "run", "test:live", env=env)  # fails the test with node's report
