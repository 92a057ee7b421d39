"""ClamAV through a real clamd (Debian's clamav-daemon, installed by `make test`), with a
signature database of our own: no signature download is possible here."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.aws.embedded import free_port
from infra.media.pipeline import scanners
from infra.media.scanners import ClamdError, ClamdScanner, parse_reply
from infra.settings import Settings
from services.core.media import MediaStatus
from services.ingest.pipeline import default_steps
from services.ingest.processing import ObjectCreated, ProcessingService
from tests.conftest import TEST_SECRET
from tests.fakes import InMemoryBlobStore, InMemoryEventBus, InMemoryMediaRepository, make_media
from tests.media_files import photo

pytestmark = pytest.mark.integration

MARKER = b"mediagraph-test-malware-signature"
SIGNATURE = "Mediagraph.Test.Sig"


@pytest.fixture(scope="module")
def clamd_port() -> Iterator[int]:
    clamd = shutil.which("clamd") or "/usr/sbin/clamd"
    workdir = Path(tempfile.mkdtemp(prefix="mg-clamd-"))
    (workdir / "db").mkdir()
    # An extended (.ndb) signature: name, any file type, any offset, the bytes in hex.
    (workdir / "db" / "mediagraph.ndb").write_text(f"{SIGNATURE}:0:*:{MARKER.hex()}\n")
    port = free_port()
    config = workdir / "clamd.conf"
    config.write_text(
        "\n".join(
            [
                f"DatabaseDirectory {workdir / 'db'}",
                "TCPAddr 127.0.0.1",
                f"TCPSocket {port}",
                "Foreground yes",
                f"LogFile {workdir / 'clamd.log'}",
                f"PidFile {workdir / 'clamd.pid'}",
                f"TemporaryDirectory {workdir}",
                "StreamMaxLength 50M",
                "User root" if os.geteuid() == 0 else "",
            ]
        )
        + "\n"
    )
    process = subprocess.Popen([clamd, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        scanner = ClamdScanner(host="127.0.0.1", port=port, timeout_s=2)
        deadline = time.monotonic() + 60
        while True:
            try:
                asyncio.run(scanner.ping())
                break
            except (OSError, ClamdError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"clamd did not start: {process.stderr.read()!r}") from None  # type: ignore[union-attr]
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return str(path)


async def test_clamd_finds_its_signature_and_passes_clean_files(clamd_port: int, tmp_path: Path) -> None:
    scanner = ClamdScanner(host="127.0.0.1", port=clamd_port)

    # Past the first chunk: INSTREAM carries the whole file, not its head.
    infected = photo() + b"\x00" * (1024 * 1024) + MARKER
    assert await scanner.scan(write(tmp_path, infected)) == f"{SIGNATURE}.UNOFFICIAL"
    assert await scanner.scan(write(tmp_path, photo())) is None


async def test_an_upload_clamd_flags_is_quarantined(clamd_port: int) -> None:
    settings = Settings(_env_file=None, jwt_secret=TEST_SECRET, clamd_host="127.0.0.1", clamd_port=clamd_port)
    repo, blobs = InMemoryMediaRepository(), InMemoryBlobStore()
    bus = InMemoryEventBus(repo.outbox)
    from infra.media.images import VipsImageProcessor
    from infra.media.moderation import LocalRuleModerator

    steps = default_steps(
        repo=repo,
        blobs=blobs,
        images=VipsImageProcessor(max_pixels=settings.max_image_pixels),
        scanners=scanners(settings),
        moderator=LocalRuleModerator(),
        derived_prefix="derived/",
    )
    service = ProcessingService(repo, blobs, bus, upload_prefix="uploads/", steps=steps)
    data = photo() + MARKER
    media = make_media(data)
    await repo.create(media)
    blobs.put(media.object_key, data, "image/jpeg")

    await service.handle(ObjectCreated(key=media.object_key))

    done = await repo.get(media.id)
    assert done is not None and done.status is MediaStatus.QUARANTINED
    assert done.reject_reason == f"malware found: {SIGNATURE}.UNOFFICIAL"
    assert done.object_key == f"quarantine/{media.id}"


async def test_an_unreachable_clamd_is_a_transient_failure(tmp_path: Path) -> None:
    scanner = ClamdScanner(host="127.0.0.1", port=free_port(), timeout_s=5)

    with pytest.raises(ConnectionRefusedError):
        await scanner.scan(write(tmp_path, photo()))


def test_clamd_replies_are_parsed() -> None:
    assert parse_reply("stream: OK") is None
    assert parse_reply("stream: Win.Test.EICAR_HDB-1 FOUND") == "Win.Test.EICAR_HDB-1"
    with pytest.raises(ClamdError):
        parse_reply("INSTREAM size limit exceeded. ERROR")
