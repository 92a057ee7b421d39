"""The sample app (examples/web, on its own origin) in real headless Chromium against the real
stack: sign in, upload a real JPEG with visible progress, PENDING → PROCESSING → COMPLETED live,
the image shown, a gallery that loads more on scroll, delete and restore; and a multipart upload
interrupted by a reload, then resumed with only the missing parts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from infra.aws.sqs_worker import SqsWorker
from tests.browser.chrome import severe_console_messages, wait_until
from tests.client import create_upload
from tests.conftest import PART
from tests.media_files import _encode, _noise, photo

pytestmark = pytest.mark.e2e


def _text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _sign_in(driver: webdriver.Chrome, app: str, api: str, user: str) -> None:
    driver.get(f"{app}/?api={api}")
    field = driver.find_element(By.ID, "user")
    field.clear()
    field.send_keys(user)
    driver.find_element(By.ID, "sign-in").click()
    wait_until(driver, lambda d: _text(d, "whoami") == f"Signed in as {user}")


def _cards(driver: webdriver.Chrome, list_id: str) -> list[WebElement]:
    return list(driver.find_elements(By.CSS_SELECTOR, f"#{list_id} li"))


def _card(
    driver: webdriver.Chrome, list_id: str, media_id: str
) -> Callable[[webdriver.Chrome], list[WebElement]]:
    return lambda d: d.find_elements(By.CSS_SELECTOR, f'#{list_id} li[data-id="{media_id}"]')


def _photo_journey(driver: webdriver.Chrome, app: str, api: str, jpeg: Path, earlier: int) -> None:
    _sign_in(driver, app, api, "alice")
    # The gallery shows one page of the earlier uploads, then the rest when its end scrolls into view.
    wait_until(driver, lambda d: len(_cards(d, "gallery")) == 12)
    driver.execute_script("document.getElementById('more').scrollIntoView()")
    wait_until(driver, lambda d: len(_cards(d, "gallery")) == earlier and _text(d, "more") == "That's all.")

    driver.find_element(By.ID, "file").send_keys(str(jpeg))
    wait_until(driver, lambda d: _text(d, "status") == "COMPLETED")
    history = [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#status-history li")]
    assert history == ["PENDING", "PROCESSING", "COMPLETED"], history
    progress = driver.find_element(By.ID, "progress")
    assert progress.is_displayed()
    assert progress.get_attribute("value") == "100" and _text(driver, "progress-text") == "100%"
    assert (progress.get_attribute("data-seen") or "").split()[-1] == "100"
    preview = driver.find_element(By.ID, "preview")
    wait_until(
        driver,
        lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", preview),
    )
    assert preview.is_displayed()

    # The gallery shows the new photo (the only COMPLETED one) once its subscription ended;
    # delete it, then restore it.
    first: list[WebElement] = wait_until(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#gallery li[data-status="COMPLETED"]')
    )
    media_id = first[0].get_attribute("data-id") or ""
    first[0].find_element(By.CSS_SELECTOR, "button.delete").click()
    trashed = wait_until(driver, _card(driver, "trash", media_id))
    wait_until(driver, lambda d: not _card(d, "gallery", media_id)(d))
    trashed[0].find_element(By.CSS_SELECTOR, "button.restore").click()
    wait_until(driver, _card(driver, "gallery", media_id))
    wait_until(driver, lambda d: not _card(d, "trash", media_id)(d))
    errors = severe_console_messages(driver)
    assert errors == [], errors


@pytest.mark.timeout(300)
async def test_sign_in_upload_watch_it_complete_delete_and_restore(
    browser: webdriver.Chrome,
    web_app: str,
    dev_api: str,
    worker: SqsWorker,
    token: Callable[..., str],
    tmp_path: Path,
) -> None:
    earlier = 14  # more than the page of 12 the gallery loads first
    for seed in range(earlier):
        await create_upload(dev_api, token("alice"), photo(64, 48, seed=100 + seed))
    jpeg = tmp_path / "sunset.jpg"
    jpeg.write_bytes(photo(800, 600, seed=5))
    await asyncio.to_thread(_photo_journey, browser, web_app, dev_api, jpeg, earlier)


def _interrupted_then_resumed(driver: webdriver.Chrome, app: str, api: str, big: Path) -> None:
    _sign_in(driver, app, api, "bob")
    # Slow the network (≈ 4 MiB/s up) so that the reload lands between two parts.
    driver.set_network_conditions(
        offline=False, latency=0, download_throughput=-1, upload_throughput=4 * 1024 * 1024
    )
    driver.find_element(By.ID, "file").send_keys(str(big))
    wait_until(
        driver, lambda d: int(d.find_element(By.ID, "progress").get_attribute("data-loaded") or 0) >= PART
    )
    driver.refresh()
    driver.delete_network_conditions()
    wait_until(driver, lambda d: "Unfinished upload: big.jpg" in _text(d, "resumable"))

    driver.find_element(By.ID, "file").send_keys(str(big))
    wait_until(driver, lambda d: _text(d, "status") == "COMPLETED", timeout=120)
    progress = driver.find_element(By.ID, "progress")
    assert int(progress.get_attribute("data-resumed-parts") or 0) >= 1
    assert "resumed" in _text(driver, "progress-text")
    assert _text(driver, "resumable") == ""
    history = [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#status-history li")]
    assert history[-1] == "COMPLETED" and history[0] == "PENDING", history


@pytest.mark.timeout(300)
async def test_a_multipart_upload_interrupted_by_a_reload_resumes(
    browser: webdriver.Chrome, web_app: str, dev_api: str, worker: SqsWorker, tmp_path: Path
) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(_encode(_noise(3200), "JPEG", quality=95))
    assert 2 * PART < big.stat().st_size < 3 * PART  # three parts
    await asyncio.to_thread(_interrupted_then_resumed, browser, web_app, dev_api, big)
