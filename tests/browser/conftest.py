from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from infra.aws.resources import Resources
from infra.settings import Settings
from tests.browser.chrome import start_chromium, static_site
from tests.conftest import multipart_settings
from tests.node import WEB, run_npm
from tests.servers import serving


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from multipart_settings(moto_endpoint, redis_url)


@pytest.fixture
async def dev_api(settings: Settings, resources: Resources) -> AsyncIterator[str]:
    """The API as under `mediagraph dev`: development profile, the development sign-in."""
    async with serving(settings, dev_sign_in=True) as url:
        yield url


@pytest.fixture(scope="session")
def web_app() -> Iterator[str]:
    """The sample app, built from examples/web with the client, on its own origin."""
    run_npm(WEB, "run", "build")
    with static_site(WEB / "dist") as url:
        yield url


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[webdriver.Chrome]:
    driver = await asyncio.to_thread(start_chromium, tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        await asyncio.to_thread(driver.quit)
