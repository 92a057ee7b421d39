"""Small real files for tests: bytes whose magic matches their type."""

from __future__ import annotations

import os

# A minimal JPEG header followed by random payload: enough for magic-byte checks in issue 2.
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def jpeg_bytes(size: int = 4096) -> bytes:
    return JPEG_HEAD + os.urandom(max(0, size - len(JPEG_HEAD)))


def png_bytes(size: int = 4096) -> bytes:
    return PNG_HEAD + os.urandom(max(0, size - len(PNG_HEAD)))


MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def mp4_bytes(size: int = 4096) -> bytes:
    return MP4_HEAD + os.urandom(max(0, size - len(MP4_HEAD)))
