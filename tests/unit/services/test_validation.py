"""The input rules every mutation shares (services/core/validation.py): each refusal is a
BadUserInput naming its field."""

from __future__ import annotations

import pytest

from services.core.errors import BadUserInput
from services.core.validation import (
    MAX_FILENAME_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    MAX_TITLE_LENGTH,
    normalize_filename,
    normalize_sha256,
    normalize_tag,
    normalize_tags,
    normalize_title,
)


def refused(field: str, call: object, *args: object) -> None:
    assert callable(call)
    with pytest.raises(BadUserInput) as caught:
        call(*args)
    assert caught.value.extensions.get("field") == field, caught.value.extensions


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("#Sunset", "sunset"),
        ("  beach ", "beach"),
        ("Ünïcode_2", "ünïcode_2"),
        ("##x", "x"),
        ("e\u0301", "é"),
    ],
)
def test_tags_are_normalised(raw: str, tag: str) -> None:
    assert normalize_tag(raw) == tag


@pytest.mark.parametrize("raw", ["", "#", "two words", "a-b", "semi;colon", "x" * (MAX_TAG_LENGTH + 1)])
def test_bad_tags_are_refused(raw: str) -> None:
    refused("tags", normalize_tag, raw)


def test_tags_keep_first_seen_order_without_duplicates_and_are_bounded() -> None:
    assert normalize_tags(["#B", "a", "b", "A"]) == ("b", "a")
    assert normalize_tags([f"t{i}" for i in range(MAX_TAGS)]) == tuple(f"t{i}" for i in range(MAX_TAGS))
    refused("tags", normalize_tags, [f"t{i}" for i in range(MAX_TAGS + 1)])


def test_titles_are_trimmed_bounded_and_printable() -> None:
    assert normalize_title("  Dusk  ") == "Dusk"
    assert normalize_title(None) == ""
    assert normalize_title("x" * MAX_TITLE_LENGTH) == "x" * MAX_TITLE_LENGTH
    refused("title", normalize_title, "x" * (MAX_TITLE_LENGTH + 1))
    refused("title", normalize_title, "bell\x07")
    refused("title", normalize_title, "right\u202eto-left")  # a format character (Cf)


@pytest.mark.parametrize(
    "raw", ["", "   ", "a/b.jpg", "a\\b.jpg", "nul\x00.jpg", "x" * (MAX_FILENAME_LENGTH + 1)]
)
def test_bad_filenames_are_refused(raw: str) -> None:
    refused("filename", normalize_filename, raw)


def test_filenames_are_trimmed() -> None:
    assert normalize_filename(" photo.jpg ") == "photo.jpg"


def test_checksums_are_64_hex_digits_lowercased() -> None:
    digest = "AB" * 32
    assert normalize_sha256(f" {digest} ") == digest.lower()
    for bad in ("ab" * 31, "zz" * 32, "ab" * 33, ""):
        refused("sha256", normalize_sha256, bad)
