"""Checks on the bytes that actually arrived. Each check is fed the object as it streams past
and gives its verdict at the end, so no check ever holds the whole file in memory.

The declared values come from createUpload; none of them is trusted until these agree."""

from __future__ import annotations

import hashlib
from typing import Protocol

from services.core.media import Media

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


_EDGE_BYTES = 64 * 1024
# Markup a browser or an interpreter would act on. Looked for only near the start and the end,
# where sniffing looks and payloads are appended: over gigabytes of compressed data, short
# markers would match by chance.
_MARKUP = (b"<script", b"<?php", b"<html", b"<!doctype html", b"<iframe", b"<svg")
# What the last bytes of a well-formed file are, by declared type.
_TRAILERS = {
    "image/jpeg": (b"\xff\xd9",),
    "image/png": (b"IEND\xaeB`\x82",),
    # The last block's terminator, then the trailer: a script ending in ";" is not a GIF's end.
    "image/gif": (b"\x00;",),
}


class PolyglotCheck:
    """A file that is also another file is refused: trailing data after the image's end marker
    (a ZIP, a script, a second image appended), or markup near either end.

    Not covered: ISO-BMFF (HEIC, MP4, MOV) trailers, whose boxes would need walking."""

    name = "polyglot"

    def __init__(self, media: Media) -> None:
        self._declared = media.content_type
        self._head = bytearray()
        self._tail = bytearray()
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if len(self._head) < _EDGE_BYTES:
            self._head += chunk[: _EDGE_BYTES - len(self._head)]
        self._tail += chunk[-_EDGE_BYTES:]
        del self._tail[:-_EDGE_BYTES]

    def verdict(self) -> str | None:
        for edge in (bytes(self._head).lower(), bytes(self._tail).lower()):
            for marker in _MARKUP:
                if marker in edge:
                    return f"polyglot: markup ({marker.decode()}) inside {self._declared}"
        tail = bytes(self._tail)
        trailers = _TRAILERS.get(self._declared)
        if trailers is not None and not any(tail.endswith(trailer) for trailer in trailers):
            return f"polyglot: data after the end of the {self._declared} image"
        if self._declared == "image/webp" and len(self._head) >= 8:
            riff_size = int.from_bytes(self._head[4:8], "little") + 8
            if riff_size != self._size:
                return "polyglot: data outside the WebP RIFF container"
        return None


DEFAULT_CHECKS: tuple[type[SizeCheck] | type[Sha256Check] | type[MagicCheck] | type[PolyglotCheck], ...] = (
    SizeCheck,
    MagicCheck,
    PolyglotCheck,
    Sha256Check,
)
