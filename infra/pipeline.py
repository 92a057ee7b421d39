"""Builds the processing pipeline's adapters and steps from settings (used by infra/runtime.py)."""

from __future__ import annotations

from contextlib import AsyncExitStack

import aioboto3
from aiobotocore.config import AioConfig

from infra.images import PillowImageProcessor
from infra.moderation import LocalRuleModerator, RekognitionModerator
from infra.scanners import ClamdScanner, EicarScanner
from infra.settings import Settings
from services.inspection import MalwareScanner, Moderator
from services.pipeline import Step, default_steps
from services.ports import BlobStore, MediaRepository


async def open_moderator(settings: Settings, stack: AsyncExitStack) -> Moderator:
    if settings.moderation_backend == "rekognition":
        session = aioboto3.Session(region_name=settings.aws_region)
        client = await stack.enter_async_context(
            session.client(
                "rekognition",
                endpoint_url=settings.rekognition_endpoint_url,
                # Throttling is retried here with backoff and jitter, then by the queue.
                config=AioConfig(retries={"total_max_attempts": 3, "mode": "standard"}, read_timeout=30),
            )
        )
        return RekognitionModerator(client, min_confidence=settings.moderation_min_confidence)
    return LocalRuleModerator(
        blocked_terms=settings.moderation_blocked_terms, blocked_sha256=settings.moderation_blocked_sha256
    )


def scanners(settings: Settings) -> list[MalwareScanner]:
    found: list[MalwareScanner] = [EicarScanner()]
    if settings.clamd_host or settings.clamd_socket:
        found.append(
            ClamdScanner(
                host=settings.clamd_host,
                port=settings.clamd_port,
                socket_path=settings.clamd_socket,
                timeout_s=settings.clamd_timeout_s,
            )
        )
    return found


async def open_steps(
    settings: Settings, stack: AsyncExitStack, repo: MediaRepository, blobs: BlobStore
) -> tuple[Step, ...]:
    return default_steps(
        repo=repo,
        blobs=blobs,
        images=PillowImageProcessor(max_pixels=settings.max_image_pixels),
        scanners=scanners(settings),
        moderator=await open_moderator(settings, stack),
        derived_prefix=settings.derived_prefix,
        duplicate_max_distance=settings.duplicate_max_distance,
    )
