"""GraphiQL's vendored assets: the files are the pinned ones, and `pip install .` (what the image
runs) ships them.

To update a version: `npm pack <package>@<version>` (check the tarball's sha512 against
`npm view <package>@<version> dist.integrity`), copy the file named in VERSIONS.json's `path`,
and put its sha384 (`openssl dgst -sha384 -binary FILE | base64`) and the new integrity in
VERSIONS.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from infra.http.graphiql import SCRIPTS, STATIC, STYLES, integrity, sri
from infra.settings import Settings
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


def test_each_vendored_file_is_the_pinned_one() -> None:
    pinned = json.loads((STATIC / "VERSIONS.json").read_text())["files"]
    assert set(pinned) <= set(SCRIPTS) | set(STYLES)
    for name, entry in pinned.items():
        assert sri((STATIC / name).read_bytes()) == entry["sha384"], f"{name} differs from {entry['package']}"
    assert set(integrity()) == set(SCRIPTS) | set(STYLES)


def test_pip_install_ships_the_assets(tmp_path: Path) -> None:
    """Builds the wheel the Dockerfile's `pip install --no-deps .` installs, from a copy of the
    sources (no build files left in the tree)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("schema", "resolvers", "services", "subscriptions", "infra"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
    )
    [wheel] = (tmp_path / "dist").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    for name in (*SCRIPTS, *STYLES, "VERSIONS.json", "LICENSES.txt"):
        assert f"infra/http/static/graphiql/{name}" in shipped, name


def test_the_production_profile_serves_no_graphiql_assets() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from infra.roots.app import create_app

    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    production = Settings(
        _env_file=None, profile="production", jwt_secret=TEST_SECRET, session_signing_key=key.decode()
    )
    development = Settings(_env_file=None, jwt_secret=TEST_SECRET)

    def paths(settings: Settings) -> set[str]:
        return {getattr(route, "path", "") for route in create_app(settings).routes}

    assert "/graphiql/{name}" in paths(development)
    assert "/graphiql/{name}" not in paths(production)
