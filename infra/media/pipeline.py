"""Builds the processing pipeline's adapters and steps from settings (used by infra/roots/runtime.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from infra.media.budget import DecodeBudget
from infra.media.images import VipsImageProcessor
from infra.media.moderation import LocalRuleModerator, RekognitionModerator
from infra.media.notifications import SnsNotifier, WebhookNotifier
from infra.media.scanners import ClamdScanner, EicarScanner
from infra.media.video import FfmpegVideoProber
from infra.settings import Settings
from services.core.ports import BlobStore, MediaRepository
from services.ingest.inspection import MalwareScanner, Moderator, VideoProber
from services.ingest.notifications import Notifier
from services.ingest.pipeline import Step, default_steps


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
        images=image_processor(settings, stack),
        scanners=scanners(settings),
        moderator=await open_moderator(settings, stack),
        derived_prefix=settings.derived_prefix,
        duplicate_max_distance=settings.duplicate_max_distance,
        video=video_prober(settings),
    )


def image_processor(settings: Settings, stack: AsyncExitStack) -> VipsImageProcessor:
    """Decoding and encoding on threads of their own (one per core by default): libvips, libwebp
    and pillow-heif release the GIL. The budget bounds the decoded pixels held at once."""
    executor = ThreadPoolExecutor(settings.effective_image_threads, thread_name_prefix="mg-image")
    stack.callback(executor.shutdown, wait=False, cancel_futures=True)
    return VipsImageProcessor(
        max_pixels=settings.max_image_pixels,
        budget=DecodeBudget(settings.worker_decode_budget_mb * 2**20),
        executor=executor,
    )


def video_prober(settings: Settings) -> VideoProber | None:
    if not settings.ffprobe_path or not settings.ffmpeg_path:
        return None
    return FfmpegVideoProber(
        ffprobe=settings.ffprobe_path,
        ffmpeg=settings.ffmpeg_path,
        max_pixels=settings.max_image_pixels,
        timeout_s=settings.video_probe_timeout_s,
    )


async def open_notifiers(
    settings: Settings, stack: AsyncExitStack, redis: Redis | RedisCluster
) -> list[Notifier]:
    notifiers: list[Notifier] = []
    if settings.sns_topic_arn:
        session = aioboto3.Session(region_name=settings.aws_region)
        sns = await stack.enter_async_context(
            session.client(
                "sns",
                endpoint_url=settings.aws_endpoint_url,
                config=AioConfig(retries={"total_max_attempts": 4, "mode": "standard"}),
            )
        )
        notifiers.append(SnsNotifier(sns, settings.sns_topic_arn, redis, prefix=settings.redis_prefix))
    if settings.webhook_url and settings.webhook_secret is not None:
        http = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout_s))
        )
        secret = settings.webhook_secret.get_secret_value().encode()
        notifiers.append(
            WebhookNotifier(http, settings.webhook_url, secret, redis, prefix=settings.redis_prefix)
        )
    return notifiers
