"""The image installs what `make` installs, the same way: the tested path is the shipped path."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pip_steps(text: str) -> list[str]:
    """Each `pip install ...` argument list, without flags that change nothing but output or
    whether the project is editable (`-e .` in the venv, `.` in the image)."""
    steps = []
    for match in re.finditer(r"pip install ([^\n&\\]+)", text):
        words = [w for w in match.group(1).split() if w not in ("--quiet", "-e")]
        steps.append(" ".join(words))
    return steps


def _runtime_stage(dockerfile: str) -> str:
    return dockerfile.split("AS runtime", 1)[1]


def test_image_runs_the_makefiles_pip_steps_in_order() -> None:
    makefile = (ROOT / "Makefile").read_text()
    venv_recipe = makefile.split("$(STAMP): requirements.lock pyproject.toml", 1)[1].split("\n\n", 1)[0]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert _pip_steps(venv_recipe) == [
        '--upgrade "pip>=24"',
        "-r requirements.lock",
        "--no-deps .",
    ]
    assert _pip_steps(dockerfile) == _pip_steps(venv_recipe)


def test_image_has_the_video_tools_the_tests_install() -> None:
    # `make system-deps` installs ffmpeg (ffprobe comes with it) because the pipeline runs it;
    # the image needs it for the same reason. clamd is a separate service in both.
    makefile = (ROOT / "Makefile").read_text()
    assert ",,ffmpeg)" in makefile
    runtime = _runtime_stage((ROOT / "Dockerfile").read_text())
    install = re.search(r"apt-get install[^\n]*", runtime)
    assert install is not None and "ffmpeg" in install.group(0).split()
    assert "clamav" not in runtime
