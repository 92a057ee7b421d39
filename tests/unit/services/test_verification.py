"""Checks on the bytes that arrived: content sniffing, size, checksum and magic."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.core.media import Media
from services.ingest.verification import (
    DEFAULT_CHECKS,
    Check,
    MagicCheck,
    Sha256Check,
    SizeCheck,
    sniff_content_type,
)
from tests.fakes import make_media
from tests.media_files import jpeg_bytes, png_bytes


def _ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00" + brand + b"isom"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg", id="jpeg-jfif"),
        pytest.param(b"\xff\xd8\xff\xe1\x00\x10Exif\x00", "image/jpeg", id="jpeg-exif"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", id="png"),
        pytest.param(b"GIF87a\x01\x00", "image/gif", id="gif87a"),
        pytest.param(b"GIF89a\x01\x00", "image/gif", id="gif89a"),
        pytest.param(b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp", id="webp"),
        pytest.param(_ftyp(b"heic"), "image/heic", id="heic"),
        pytest.param(_ftyp(b"heix"), "image/heic", id="heix"),
        pytest.param(_ftyp(b"mif1"), "image/heic", id="mif1"),
        pytest.param(_ftyp(b"isom"), "video/mp4", id="mp4-isom"),
        pytest.param(_ftyp(b"mp42"), "video/mp4", id="mp4-mp42"),
        pytest.param(_ftyp(b"qt  "), "video/quicktime", id="quicktime"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"\xff\xd8", None, id="truncated-jpeg"),
        pytest.param(b"\x89PNG\r\n", None, id="truncated-png"),
        pytest.param(b"GIF88a", None, id="gif-unknown-version"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt ", None, id="riff-wave"),
        pytest.param(b"%PDF-1.7\n", None, id="pdf"),
        pytest.param(b"<svg xmlns=", None, id="svg"),
        pytest.param(b"MZ\x90\x00", None, id="exe"),
        pytest.param(b"hello world", None, id="text"),
    ],
)
def test_sniff_content_type(head: bytes, expected: str | None) -> None:
    assert sniff_content_type(head) == expected


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def verdict(check: Check, data: bytes, chunk_size: int = 7) -> str | None:
    for chunk in chunks(data, chunk_size):
        check.feed(chunk)
    return check.verdict()


@pytest.fixture
def data() -> bytes:
    return jpeg_bytes(1000)


@pytest.fixture
def media(data: bytes) -> Media:
    return make_media(data)


@pytest.mark.parametrize("chunk_size", [1, 7, 1000, 4096])
def test_size_check_accepts_the_declared_size_whatever_the_chunking(
    media: Media, data: bytes, chunk_size: int
) -> None:
    assert verdict(SizeCheck(media), data, chunk_size) is None


def test_size_check_refuses_more_or_fewer_bytes(media: Media, data: bytes) -> None:
    assert verdict(SizeCheck(media), data + b"!") == "size mismatch: declared 1000 bytes, received 1001"
    assert verdict(SizeCheck(media), data[:-1]) == "size mismatch: declared 1000 bytes, received 999"
    assert verdict(SizeCheck(media), b"") == "size mismatch: declared 1000 bytes, received 0"


@pytest.mark.parametrize("chunk_size", [1, 64, 1000])
def test_sha256_check_accepts_the_declared_bytes(media: Media, data: bytes, chunk_size: int) -> None:
    assert media.sha256 == hashlib.sha256(data).hexdigest()
    assert verdict(Sha256Check(media), data, chunk_size) is None


def test_sha256_check_refuses_other_bytes(media: Media, data: bytes) -> None:
    flipped = data[:500] + bytes([data[500] ^ 1]) + data[501:]
    assert verdict(Sha256Check(media), flipped) == "checksum mismatch: the bytes are not the ones declared"
    assert verdict(Sha256Check(media), data + b"\x00") is not None
    assert verdict(Sha256Check(media), data[::-1]) is not None


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 31, 32, 33, 4096])
def test_magic_check_sees_a_header_split_across_chunks(media: Media, data: bytes, chunk_size: int) -> None:
    assert verdict(MagicCheck(media), data, chunk_size) is None


def test_magic_check_refuses_another_type_than_declared(data: bytes) -> None:
    png = png_bytes(1000)
    declared_jpeg = make_media(png, content_type="image/jpeg")
    declared_png = make_media(data, content_type="image/png")

    assert verdict(MagicCheck(declared_jpeg), png) == (
        "type mismatch: declared image/jpeg, content is image/png"
    )
    assert verdict(MagicCheck(declared_png), data) == (
        "type mismatch: declared image/png, content is image/jpeg"
    )


def test_magic_check_refuses_unknown_content() -> None:
    script = b"<script>alert(1)</script>" * 10
    media = make_media(script, content_type="image/jpeg")
    assert verdict(MagicCheck(media), script) == "type mismatch: declared image/jpeg, content is unknown"
    assert verdict(MagicCheck(make_media(b"", content_type="image/gif")), b"") is not None


def test_magic_check_only_looks_at_the_start(media: Media, data: bytes) -> None:
    # A JPEG marker later in the file does not make a text file a JPEG.
    text = b"A" * 40 + data
    assert verdict(MagicCheck(make_media(text)), text) is not None


def test_the_default_checks_cover_size_type_and_checksum(media: Media) -> None:
    assert {make(media).name for make in DEFAULT_CHECKS} == {"size", "magic", "polyglot", "sha256"}


@pytest.mark.parametrize("brand", [b"avif", b"M4A ", b"3gp4", b"crx "])
def test_other_iso_media_brands_are_not_mp4(brand: bytes) -> None:
    head = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00"
    assert sniff_content_type(head) != "video/mp4"


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 70_000])
def test_polyglot_check_passes_real_images_whatever_the_chunking(chunk_size: int) -> None:
    from services.ingest.verification import PolyglotCheck
    from tests.media_files import photo

    for data, content_type in (
        (photo(), "image/jpeg"),
        (photo(fmt="PNG"), "image/png"),
        (photo(fmt="WEBP"), "image/webp"),
        (photo(fmt="GIF"), "image/gif"),
    ):
        assert verdict(PolyglotCheck(make_media(data, content_type=content_type)), data, chunk_size) is None


@pytest.mark.parametrize(
    ("content_type", "fmt", "tamper", "reason"),
    [
        ("image/jpeg", "JPEG", lambda d: d + b"PK\x05\x06" + b"\x00" * 18, "data after the end"),
        ("image/png", "PNG", lambda d: d + b"<?php system($_GET[1]); ?>", "markup"),
        ("image/gif", "GIF", lambda d: b"GIF89a/*" + d[8:] + b"*/=1;alert(1);", "data after the end"),
        ("image/webp", "WEBP", lambda d: d + b"\x00" * 100, "outside the WebP RIFF"),
        ("image/jpeg", "JPEG", lambda d: d[:2] + b"\xff\xfe\x00\x10<html><body>" + d[2:], "markup"),
    ],
)
def test_polyglot_check_refuses_files_that_are_also_something_else(
    content_type: str, fmt: str, tamper: Callable[[bytes], bytes], reason: str
) -> None:
    from services.ingest.verification import PolyglotCheck
    from tests.media_files import photo

    data = tamper(photo(fmt=fmt))
    found = verdict(PolyglotCheck(make_media(data, content_type=content_type)), data, 1000)
    assert found is not None and found.startswith("polyglot") and reason in found


async def test_eicar_is_found_across_a_chunk_boundary(tmp_path: Path) -> None:
    from infra.media.scanners import CHUNK_BYTES, EicarScanner
    from tests.media_files import EICAR

    path = tmp_path / "f"
    path.write_bytes(b"\x00" * (CHUNK_BYTES - 30) + EICAR + b"\x00" * 10)
    assert await EicarScanner().scan(str(path)) == "Eicar-Test-Signature"
    path.write_bytes(b"\x00" * (CHUNK_BYTES - 30) + EICAR[:-1] + b"\x00" * 10)
    assert await EicarScanner().scan(str(path)) is None
