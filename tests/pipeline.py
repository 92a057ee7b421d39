"""The real pipeline (Pillow, the EICAR scanner, local moderation rules) over any stores."""

from __future__ import annotations

from infra.images import PillowImageProcessor
from infra.moderation import LocalRuleModerator
from infra.scanners import EicarScanner
from services.inspection import Moderator
from services.pipeline import Step, default_steps
from services.ports import BlobStore, MediaRepository

TEST_MAX_PIXELS = 20_000_000


def real_steps(
    repo: MediaRepository, blobs: BlobStore, *, moderator: Moderator | None = None
) -> tuple[Step, ...]:
    return default_steps(
        repo=repo,
        blobs=blobs,
        images=PillowImageProcessor(max_pixels=TEST_MAX_PIXELS),
        scanners=[EicarScanner()],
        moderator=moderator or LocalRuleModerator(blocked_terms=["forbidden"]),
        derived_prefix="derived/",
    )
