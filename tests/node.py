"""Node.js for the tests that run JavaScript (clients/js, examples/web): where it is, and a clear
failure naming what is missing when it is not there (`make test` installs the packages first)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "clients" / "js"
WEB = ROOT / "examples" / "web"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js 18+ is missing: `make system-deps` installs Debian's nodejs and npm")
    return found


def require_packages(folder: Path) -> None:
    if not (folder / "node_modules").is_dir():
        pytest.fail(
            f"{folder.relative_to(ROOT)}/node_modules is missing: run `make js` (npm ci from the lock file)"
        )


def _npm(folder: Path) -> str:
    node()
    require_packages(folder)
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: `make system-deps` installs Debian's npm")
    return npm


def run_npm(folder: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """`npm <args>` in `folder`; fails the test with npm's output when it fails."""
    npm = _npm(folder)
    result = subprocess.run(
        [npm, *args],
        cwd=folder,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"npm {' '.join(args)} failed in {folder.relative_to(ROOT)}:\n{output[-6000:]}")
    return output


async def run_npm_async(
    folder: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> str:
    """As run_npm, without blocking the event loop (the API and the worker of the test run on it)."""
    process = await asyncio.create_subprocess_exec(
        _npm(folder),
        *args,
        cwd=folder,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    output = stdout.decode(errors="replace")
    if process.returncode != 0:
        pytest.fail(f"npm {' '.join(args)} failed in {folder.relative_to(ROOT)}:\n{output[-8000:]}")
    return output
