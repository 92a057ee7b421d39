"""Checks on the bytes that actually arrived. Each check is fed the object as it streams past
and gives its verdict at the end, so no check ever holds the whole file in memory.

The declared values come from createUpload; none of them is trusted until these agree."""

from __future__ import annotations

import hashlib
from typing import Protocol

from services.media import Media

_SNIFF_BYTES = 32


class Check(Protocol):
    name: str

    def feed(self, chunk: bytes) -> None: ...

    def verdict(self) -> str | None:
        """None when the bytes pass; else why they are refused (shown to the owner)."""


class SizeCheck:
    name = "size"

    def __init__(self, media: Media) -> None:
        self._expected = media.size
        self._seen = 0

    def feed(self, chunk: bytes) -> None:
        self._seen += len(chunk)

    def verdict(self) -> str | None:
        if self._seen != self._expected:
            return f"size mismatch: declared {self._expected} bytes, received {self._seen}"
        return None


class Sha256Check:
    name = "sha256"

    def __init__(self, media: Media) -> None:
        self._expected = media.sha256
        self._hash = hashlib.sha256()

    def feed(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def verdict(self) -> str | None:
        if self._hash.hexdigest() != self._expected:
            return "checksum mismatch: the bytes are not the ones declared"
        return None


class MagicCheck:
    """The first bytes must be those of the declared content type."""

    name = "magic"

    def __init__(self, media: Media) -> None:
        self._declared = media.content_type
        self._head = b""

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < _SNIFF_BYTES:
            self._head += chunk[: _SNIFF_BYTES - len(self._head)]

    def verdict(self) -> str | None:
        detected = sniff_content_type(self._head)
        if detected != self._declared:
            return f"type mismatch: declared {self._declared}, content is {detected or 'unknown'}"
        return None


def sniff_content_type(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        # The major brand says what the ISO-BMFF file is; AVIF, M4A or 3GP are not MP4 video.
        return _FTYP_BRANDS.get(head[8:12])
    return None


_FTYP_BRANDS = {
    **dict.fromkeys((b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"), "image/heic"),
    **dict.fromkeys((b"avif", b"avis"), "image/avif"),
    b"qt  ": "video/quicktime",
    **dict.fromkeys(
        (
            b"isom",
            b"iso2",
            b"iso4",
            b"iso5",
            b"iso6",
            b"mp41",
            b"mp42",
            b"avc1",
            b"dash",
            b"M4V ",
            b"mmp4",
            b"MSNV",
        ),
        "video/mp4",
    ),
}


DEFAULT_CHECKS: tuple[type[SizeCheck] | type[Sha256Check] | type[MagicCheck], ...] = (
    SizeCheck,
    MagicCheck,
    Sha256Check,
)
