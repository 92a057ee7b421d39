"""The whole-tree layers contract names every part of infra/, services/ and schema/: the
per-package contracts are exhaustive (a new part fails lint-imports until it has a layer), and
this test makes the same true of the contract that keeps adapters below the GraphQL layer."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _parts(package: str) -> set[str]:
    here = ROOT / package
    names = {path.stem for path in here.glob("*.py") if path.stem != "__init__"}
    names |= {path.name for path in here.iterdir() if (path / "__init__.py").exists()}
    return {f"{package}.{name}" for name in names}


def test_the_stack_contract_names_every_part() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    stack = config["contracts"][0]
    assert stack["type"] == "layers" and not stack.get("containers")
    named = {name for layer in stack["layers"] for name in re.split(r"\s*[|:]\s*", layer.strip())}
    expected = _parts("infra") | _parts("schema") | {"resolvers", "subscriptions", "services"}
    assert expected <= named, f"add to the first import-linter contract: {sorted(expected - named)}"
