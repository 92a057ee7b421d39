"""Ports for looking inside the bytes: decoding and deriving images, malware scanners and
moderation. Adapters live in `infra/` (Pillow, clamd, Rekognition, local rules); the steps that
call them are in `services/ingest/pipeline.py`.

Errors: `MediaRefused` means the bytes themselves are bad (permanent: the upload is REJECTED at
once). Anything else an adapter raises is taken as transient (throttling, a timeout, a scanner
that is down) and makes the worker retry the message with backoff, then dead-letter it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from services.core.media import Media


class MediaRefused(Exception):
    """The bytes can never be accepted: corrupt, too many pixels, not what they claim to be."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImageFacts:
    width: int
    height: int
    format: str  # Pillow's name: JPEG, PNG, WEBP, GIF, HEIF


@dataclass(frozen=True, slots=True)
class VideoFacts:
    width: int
    height: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Rendition:
    """A derived file on local disk, waiting to be stored under `name`."""

    name: str
    path: str
    width: int
    height: int
    content_type: str = "image/webp"


@dataclass(frozen=True, slots=True)
class Derived:
    width: int  # upright: EXIF orientation applied
    height: int
    renditions: tuple[Rendition, ...]
    blurhash: str
    phash: str  # 64-bit dHash as 16 hex digits
    format: str = ""  # as ImageFacts.format


@dataclass(frozen=True, slots=True)
class ModerationResult:
    labels: tuple[str, ...] = field(default=())

    @property
    def flagged(self) -> bool:
        return bool(self.labels)


class ImageProcessor(Protocol):
    """CPU-heavy work: adapters run it off the event loop."""

    async def derive(self, path: str, workdir: str) -> Derived:
        """Decode once (within the pixel limit and the decoding memory budget, truncated data
        refused) and write the sanitised variants (no EXIF, no location, orientation applied,
        sRGB) under `workdir`, with blurhash and perceptual hash. Raises MediaRefused."""


class MalwareScanner(Protocol):
    name: str

    async def scan(self, path: str) -> str | None:
        """The name of the signature found in the file, or None when it is clean."""


class Moderator(Protocol):
    async def moderate(self, media: Media, path: str) -> ModerationResult:
        """Labels that make the media need a human review; none when it may be shown."""


class VideoProber(Protocol):
    async def probe(self, path: str) -> VideoFacts:
        """The container parses and holds a video stream. Raises MediaRefused."""

    async def poster(self, path: str, workdir: str, *, at_ms: int) -> str:
        """A still frame near `at_ms`, as an image file under `workdir`. Raises MediaRefused."""
