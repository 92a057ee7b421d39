"""Every setting is listed in .env.example, so an operator can find it."""

from __future__ import annotations

from pathlib import Path

from infra.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_every_setting_is_in_env_example() -> None:
    text = EXAMPLE.read_text()
    missing = [name for name in Settings.model_fields if f"MEDIAGRAPH_{name.upper()}=" not in text]
    assert missing == []
