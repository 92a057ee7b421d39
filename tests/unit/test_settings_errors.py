"""A configuration error names the setting, never its value: the value may be a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.roots import cli
from infra.settings import Settings, describe_errors

# 31 bytes: one short of the minimum, so the model-level check refuses it.
SECRET = "s3cr3t-Value-that-must-not-leak"


def test_a_refused_secret_is_not_in_the_error() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, jwt_secret=SECRET, jwt_algorithms="HS256")
    text = str(caught.value)
    assert SECRET[:6] not in text
    assert describe_errors(caught.value) == ["MEDIAGRAPH_JWT_SECRET must be at least 32 bytes of real secret"]


def test_a_field_error_names_the_variable_without_its_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, jwt_secret="x" * 40, jwt_leeway_s="9999-not-shown")
    assert "9999-not-shown" not in str(caught.value)
    [line] = describe_errors(caught.value)
    assert line.startswith("MEDIAGRAPH_JWT_LEEWAY_S: ")
    assert "9999" not in line


def test_the_cli_prints_the_setting_and_exits_without_the_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in list(os.environ):
        if name.startswith("MEDIAGRAPH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MEDIAGRAPH_JWT_SECRET", SECRET)
    monkeypatch.setenv("MEDIAGRAPH_PROFILE", "production")
    # main() configures the process's logging; the test process's must stay as it is.
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    with pytest.raises(SystemExit) as exited:
        cli.main(["sweep"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "configuration error: MEDIAGRAPH_JWT_SECRET must be at least 32 bytes" in output
    assert SECRET[:6] not in output
