"""An app that stops gives its heap back: the lifespan's gc.freeze() is undone at shutdown, so a
process that starts and stops apps (every test, a reload) does not keep each one alive."""

from __future__ import annotations

import gc

import httpx
import pytest

from infra.aws.resources import Resources
from infra.settings import Settings
from tests.servers import serving

pytestmark = pytest.mark.e2e


async def test_a_stopped_app_leaves_nothing_frozen(settings: Settings, resources: Resources) -> None:
    async with serving(settings) as url:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/healthz")).status_code == 200
        assert gc.get_freeze_count() > 0  # frozen while serving: the stall the freeze avoids
    assert gc.get_freeze_count() == 0
