"""Settings of the processing pipeline that refuse a configuration that cannot work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.media.pipeline import scanners, video_prober
from infra.media.scanners import ClamdScanner
from infra.settings import Settings
from tests.conftest import TEST_SECRET


def make(**values: object) -> Settings:
    return Settings(_env_file=None, jwt_secret=TEST_SECRET, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "values",
    [
        {"derived_prefix": "uploads/derived/"},
        {"quarantine_prefix": "uploads/q/"},
        {"upload_prefix": "derived/in/"},
    ],
)
def test_derived_and_quarantine_prefixes_must_lie_outside_the_upload_prefix(values: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="outside the upload prefix"):
        make(**values)


def test_a_webhook_needs_a_real_secret() -> None:
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        make(webhook_url="https://hooks.example.com/x")
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        make(webhook_url="https://hooks.example.com/x", webhook_secret="short")
    assert make(webhook_url="https://hooks.example.com/x", webhook_secret="s" * 32).webhook_url


def test_clamd_joins_the_builtin_scanner_only_when_configured() -> None:
    assert [scanner.name for scanner in scanners(make())] == ["builtin"]
    configured = scanners(make(clamd_host="127.0.0.1", clamd_port=3311))
    assert [scanner.name for scanner in configured] == ["builtin", "clamd"]
    assert isinstance(configured[1], ClamdScanner)


def test_videos_without_ffmpeg_paths_are_not_probed() -> None:
    assert video_prober(make()) is not None
    assert video_prober(make(ffprobe_path="", ffmpeg_path="")) is None
