"""Debian's headless Chromium under Debian's chromedriver (selenium), never a downloaded browser,
with every host but this machine unresolvable (the outside network is blocked), and a static file
server for the sample app on its own origin."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1200,800",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
)


def require_chromium() -> None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(path) is None:
            pytest.fail(f"{path} is missing: `make system-deps` installs Debian's {package}")


def start_chromium(profile: Path) -> webdriver.Chrome:
    """A fresh browser (its own profile folder); blocking, call it off the event loop."""
    require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def wait_until(
    driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any], timeout: float = 60
) -> Any:
    """Poll `condition` until it is truthy (a bound, not a measurement); returns its value."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the base class's name
        pass


@contextlib.contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serves `folder` on 127.0.0.1 and a free port (another origin than the API); yields its URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def severe_console_messages(driver: webdriver.Chrome) -> list[str]:
    """The page's errors: failed loads, CSP violations, uncaught exceptions."""
    entries = driver.get_log("browser")  # type: ignore[no-untyped-call]  # selenium leaves it untyped
    return [str(entry["message"]) for entry in entries if entry["level"] == "SEVERE"]
