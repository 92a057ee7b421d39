"""The real pipeline (libvips and Pillow, the EICAR scanner, local moderation rules) over any stores."""

from __future__ import annotations

from infra.media.images import VipsImageProcessor
from infra.media.moderation import LocalRuleModerator
from infra.media.scanners import EicarScanner
from services.core.ports import BlobStore, MediaRepository
from services.ingest.inspection import Moderator
from services.ingest.pipeline import Step, default_steps

TEST_MAX_PIXELS = 20_000_000


def real_steps(
    repo: MediaRepository,
    blobs: BlobStore,
    *,
    moderator: Moderator | None = None,
    max_pixels: int = TEST_MAX_PIXELS,
    images: VipsImageProcessor | None = None,
) -> tuple[Step, ...]:
    return default_steps(
        repo=repo,
        blobs=blobs,
        images=images or VipsImageProcessor(max_pixels=max_pixels),
        scanners=[EicarScanner()],
        moderator=moderator or LocalRuleModerator(blocked_terms=["forbidden"]),
        derived_prefix="derived/",
    )
