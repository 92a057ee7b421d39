"""The processing pipeline: small steps the worker runs in order on the spooled upload.

Each step looks at the job, may fill something in (facts, variants, hashes), and either lets
the job go on (None) or ends it with a Verdict (REJECTED or QUARANTINED). Order matters:

    integrity   size and SHA-256 are the declared ones       else REJECTED
    malware     built-in EICAR check, clamd when configured   else QUARANTINED (object moved)
    type        magic bytes and polyglot rules                else REJECTED
    decode      images: decoded once, within the pixel limit  else REJECTED
                and the memory budget, into the sanitised
                display variant, thumbnails, blurhash, dHash;
                videos: ffprobe
    moderation  labels noted; the verdict waits for the end   (variants exist when released)
    derive      the variants stored (videos: poster frame first), all at once
    duplicates  the closest earlier look-alike of the same owner → duplicate_of
                (the owner's hashes are read beside the decode: Prefetching)
    review gate moderation labels → QUARANTINED

Malware runs before the type rules: an infected file is kept for review whatever it claims
to be, instead of being merely refused. Every step is idempotent: derived keys are fixed by the
media id, so a redelivery after a crash writes the same objects again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from services.core.media import Media, MediaStatus, Variant
from services.core.ports import BlobStore, MediaRepository
from services.ingest.inspection import (
    Derived,
    ImageFacts,
    ImageProcessor,
    MalwareScanner,
    Moderator,
    VideoFacts,
    VideoProber,
)

INTEGRITY_CHECKS = ("size", "sha256")
TYPE_CHECKS = ("magic", "polyglot")


@dataclass(frozen=True, slots=True)
class Verdict:
    status: MediaStatus  # REJECTED or QUARANTINED
    reason: str
    kind: str | None = None  # for QUARANTINED: "malware" | "moderation"


@dataclass(slots=True)
class Job:
    media: Media
    path: str  # the upload, spooled to local disk once
    workdir: str  # where steps may write files; removed after the job
    check_verdicts: dict[str, str | None]  # streaming checks, by name: None passed
    facts: ImageFacts | None = None
    video: VideoFacts | None = None
    derived: Derived | None = None
    variants: tuple[Variant, ...] = ()
    duplicate_of: str | None = None
    labels: tuple[str, ...] = field(default=())
    # Reads that steps started at the job's start (Prefetching), by step name.
    prefetched: dict[str, asyncio.Future[Any]] = field(default_factory=dict)


class Step(Protocol):
    name: str

    async def run(self, job: Job) -> Verdict | None:
        """None to go on; a Verdict ends the job. Raises MediaRefused (→ REJECTED) or anything
        else for a transient failure (the message is retried)."""


@runtime_checkable
class Prefetching(Protocol):
    """A step whose reads do not depend on the steps before it: the service starts them when
    the job starts, beside the decode, and the step awaits `job.prefetched[name]`."""

    name: str

    def prefetch(self, job: Job) -> Awaitable[Any]: ...


def _is_image(media: Media) -> bool:
    return media.content_type.startswith("image/")


class ChecksStep:
    """Verdicts of streaming checks (`services/ingest/verification.py`), gathered while spooling."""

    def __init__(self, name: str, checks: Sequence[str]) -> None:
        self.name = name
        self._checks = checks

    async def run(self, job: Job) -> Verdict | None:
        for check in self._checks:
            if (reason := job.check_verdicts.get(check)) is not None:
                return Verdict(MediaStatus.REJECTED, reason)
        return None


class MalwareStep:
    name = "malware"

    def __init__(self, scanners: Sequence[MalwareScanner]) -> None:
        self._scanners = scanners

    async def run(self, job: Job) -> Verdict | None:
        for scanner in self._scanners:
            signature = await scanner.scan(job.path)
            if signature is not None:
                return Verdict(MediaStatus.QUARANTINED, f"malware found: {signature}", kind="malware")
        return None


class DecodeStep:
    name = "decode"

    def __init__(self, images: ImageProcessor, video: VideoProber | None = None) -> None:
        self._images = images
        self._video = video

    async def run(self, job: Job) -> Verdict | None:
        if _is_image(job.media):
            # One decode serves both the checks and the variants (stored by DeriveStep).
            derived = await self._images.derive(job.path, job.workdir)
            job.derived = derived
            job.facts = ImageFacts(width=derived.width, height=derived.height, format=derived.format)
        elif self._video is not None:
            job.video = await self._video.probe(job.path)
        # Without a prober, videos are accepted on their container's magic and integrity alone.
        return None


class ModerationStep:
    name = "moderation"

    def __init__(self, moderator: Moderator) -> None:
        self._moderator = moderator

    async def run(self, job: Job) -> Verdict | None:
        result = await self._moderator.moderate(job.media, job.path)
        job.labels = result.labels
        return None


def derived_key(prefix: str, media_id: str, name: str) -> str:
    # Outside the upload prefix: writing these never triggers another S3 event.
    return f"{prefix}{media_id}/{name}.webp"


class DeriveStep:
    name = "derive"

    def __init__(
        self,
        images: ImageProcessor,
        blobs: BlobStore,
        *,
        derived_prefix: str,
        video: VideoProber | None = None,
    ) -> None:
        self._images = images
        self._blobs = blobs
        self._prefix = derived_prefix
        self._video = video

    async def run(self, job: Job) -> Verdict | None:
        if _is_image(job.media):
            if job.derived is None:  # DecodeStep made them
                job.derived = await self._images.derive(job.path, job.workdir)
        elif self._video is not None and job.video is not None:
            # A poster frame a second in (or mid-way through a shorter clip), then the image path.
            at_ms = min(1000, job.video.duration_ms // 2)
            poster = await self._video.poster(job.path, job.workdir, at_ms=at_ms)
            job.derived = await self._images.derive(poster, job.workdir)
        else:
            return None
        variants = []
        for rendition in job.derived.renditions:
            # A video's large still is its poster: Media.url keeps serving the video itself.
            name = "poster" if job.video is not None and rendition.name == "display" else rendition.name
            key = derived_key(self._prefix, job.media.id, name)
            variants.append(Variant(name, key, rendition.width, rendition.height, rendition.content_type))
        # Independent objects: stored at once, not one round trip after another.
        await asyncio.gather(
            *(
                self._blobs.put_file(variant.key, rendition.path, content_type=rendition.content_type)
                for variant, rendition in zip(variants, job.derived.renditions, strict=True)
            )
        )
        job.variants = tuple(variants)
        return None


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


class DuplicateStep:
    """Flags a near-duplicate: the closest of the owner's COMPLETED media by perceptual hash.
    Only the owner's own media are compared, so `duplicate_of` never names media they cannot
    see; the resolver still checks visibility when it is read."""

    name = "duplicates"

    def __init__(self, repo: MediaRepository, *, max_distance: int, scan_limit: int) -> None:
        self._repo = repo
        self._max_distance = max_distance
        self._scan_limit = scan_limit

    def prefetch(self, job: Job) -> Awaitable[list[tuple[str, str]]]:
        """The owner's earlier hashes do not depend on this upload's pixels: read while it decodes."""
        return self._hashes(job.media)

    async def _hashes(self, media: Media) -> list[tuple[str, str]]:
        """(id, dHash) of the owner's newest COMPLETED media, up to the scan limit: two
        attributes each (one response for a thousand), not records."""
        hashes = await self._repo.completed_hashes(media.owner_id, limit=self._scan_limit)
        return [(other_id, phash) for other_id, phash in hashes if other_id != media.id]

    async def run(self, job: Job) -> Verdict | None:
        if job.derived is None:
            return None
        fetched = job.prefetched.get(self.name)
        hashes: list[tuple[str, str]] = await (fetched if fetched is not None else self._hashes(job.media))
        best: tuple[int, str] | None = None
        for other_id, other_phash in hashes:
            distance = hamming(job.derived.phash, other_phash)
            if distance <= self._max_distance and (best is None or distance < best[0]):
                best = (distance, other_id)
        job.duplicate_of = best[1] if best else None
        return None


class ReviewGateStep:
    name = "review-gate"

    async def run(self, job: Job) -> Verdict | None:
        if job.labels:
            reason = "held for review: " + ", ".join(job.labels)
            return Verdict(MediaStatus.QUARANTINED, reason, kind="moderation")
        return None


def default_steps(
    *,
    repo: MediaRepository,
    blobs: BlobStore,
    images: ImageProcessor,
    scanners: Sequence[MalwareScanner],
    moderator: Moderator,
    derived_prefix: str,
    duplicate_max_distance: int = 6,
    duplicate_scan_limit: int = 1000,
    video: VideoProber | None = None,
) -> tuple[Step, ...]:
    return (
        ChecksStep("integrity", INTEGRITY_CHECKS),
        MalwareStep(scanners),
        ChecksStep("type", TYPE_CHECKS),
        DecodeStep(images, video),
        ModerationStep(moderator),
        DeriveStep(images, blobs, derived_prefix=derived_prefix, video=video),
        DuplicateStep(repo, max_distance=duplicate_max_distance, scan_limit=duplicate_scan_limit),
        ReviewGateStep(),
    )
