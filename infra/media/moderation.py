"""Moderation adapters: local rules (the default, no network) and AWS Rekognition
DetectModerationLabels. Both answer the `Moderator` port in services/ingest/inspection.py."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError
from PIL import Image

from services.core.media import Media, owner_text
from services.ingest.inspection import MediaRefused, ModerationResult

# Rekognition takes JPEG or PNG of at most 5 MB as inline bytes.
_PREVIEW_EDGE = 1280


class LocalRuleModerator:
    """Flags media whose filename or owner-written text (every OWNER_TEXT_FIELDS: title, tags)
    uses a blocked term, or whose bytes are on a denylist of SHA-256 digests (known-bad files).
    Crude, deterministic, free."""

    def __init__(self, *, blocked_terms: Iterable[str] = (), blocked_sha256: Iterable[str] = ()) -> None:
        self._terms = tuple(term.strip().lower() for term in blocked_terms if term.strip())
        self._digests = frozenset(digest.strip().lower() for digest in blocked_sha256 if digest.strip())

    async def moderate(self, media: Media, path: str) -> ModerationResult:
        labels: list[str] = []
        if media.sha256 in self._digests:
            labels.append("denylisted file")
        words = set(re.findall(r"[\w']+", " ".join((media.filename, *owner_text(media))).lower()))
        labels.extend(f"term:{term}" for term in self._terms if term in words)
        return ModerationResult(tuple(labels))


class RekognitionModerator:
    """DetectModerationLabels on a JPEG preview of the image. Videos are not sent (Rekognition
    moderates video asynchronously through S3 and SNS: not wired yet)."""

    def __init__(self, client: Any, *, min_confidence: float) -> None:
        self._client = client
        self._min_confidence = min_confidence

    async def moderate(self, media: Media, path: str) -> ModerationResult:
        if not media.content_type.startswith("image/"):
            return ModerationResult()
        preview = await asyncio.to_thread(_jpeg_preview, path)
        try:
            response = await self._client.detect_moderation_labels(
                Image={"Bytes": preview}, MinConfidence=self._min_confidence
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidImageFormatException", "ImageTooLargeException"):
                raise MediaRefused(f"moderation refused the image: {code}") from exc
            raise  # throttling, limits, outages: transient, the message is retried
        labels = [
            label["Name"]
            for label in response.get("ModerationLabels", [])
            if float(label.get("Confidence", 0)) >= self._min_confidence
        ]
        return ModerationResult(tuple(dict.fromkeys(labels)))


def _jpeg_preview(path: str) -> bytes:
    with Image.open(path) as image:
        image.draft("RGB", (_PREVIEW_EDGE, _PREVIEW_EDGE))
        rgb = image.convert("RGB")
    rgb.thumbnail((_PREVIEW_EDGE, _PREVIEW_EDGE))
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
