"""Input rules shared by every mutation: tags, titles, filenames, checksums."""

from __future__ import annotations

import re
import unicodedata

from services.core.errors import BadUserInput

MAX_TAGS = 20
MAX_TAG_LENGTH = 64
MAX_TITLE_LENGTH = 200
MAX_FILENAME_LENGTH = 255
_TAG = re.compile(r"^[\w]+$", re.UNICODE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def normalize_tag(raw: str) -> str:
    """Lowercase, NFC, leading '#' stripped; letters, digits and underscores only."""
    tag = unicodedata.normalize("NFC", raw.strip()).lstrip("#").lower()
    if not tag or len(tag) > MAX_TAG_LENGTH or not _TAG.match(tag):
        raise BadUserInput(
            f"invalid tag {raw[:80]!r}: 1-{MAX_TAG_LENGTH} letters, digits or underscores",
            field="tags",
        )
    return tag


def normalize_tags(raw: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if len(raw) > MAX_TAGS:
        raise BadUserInput(f"at most {MAX_TAGS} tags", field="tags")
    # dict.fromkeys keeps first-seen order while dropping duplicates.
    return tuple(dict.fromkeys(normalize_tag(tag) for tag in raw))


def normalize_title(raw: str | None) -> str:
    title = unicodedata.normalize("NFC", (raw or "").strip())
    if len(title) > MAX_TITLE_LENGTH or _has_control(title):
        raise BadUserInput(f"title: at most {MAX_TITLE_LENGTH} printable characters", field="title")
    return title


def normalize_filename(raw: str) -> str:
    name = unicodedata.normalize("NFC", raw.strip())
    if not name or len(name) > MAX_FILENAME_LENGTH or _has_control(name) or "/" in name or "\\" in name:
        raise BadUserInput(
            f"filename: 1-{MAX_FILENAME_LENGTH} printable characters, no path separators",
            field="filename",
        )
    return name


def normalize_sha256(raw: str) -> str:
    digest = raw.strip().lower()
    if not _SHA256.match(digest):
        raise BadUserInput("sha256: 64 hexadecimal characters", field="sha256")
    return digest


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cf") for char in text)
