"""The process-wide parts, opened once and closed once: AWS clients, the Redis pool, the event
bus, the adapters and the services built on them. Used by the API, the worker and the CLI."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from infra.aws_clients import AwsClients, open_clients
from infra.dynamo import DynamoMediaRepository
from infra.jwt import JwtTokenVerifier
from infra.redis_bus import RedisEventBus
from infra.s3 import S3BlobStore
from infra.settings import Settings
from services.gallery import GalleryService
from services.pagination import CursorCodec
from services.processing import ProcessingService
from services.uploads import UploadPolicy, UploadService


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    clients: AwsClients
    redis: Redis
    bus: RedisEventBus
    repo: DynamoMediaRepository
    blobs: S3BlobStore
    tokens: JwtTokenVerifier
    uploads: UploadService
    gallery: GalleryService
    processing: ProcessingService


def _cursor_key(settings: Settings) -> bytes:
    # Derived, not shared: a leaked cursor key would not forge tokens.
    source = settings.cursor_secret or settings.jwt_secret
    assert source is not None  # enforced by Settings
    secret = source.get_secret_value()
    return hashlib.sha256(b"mediagraph-cursor\0" + secret.encode()).digest()


@asynccontextmanager
async def open_runtime(settings: Settings, *, listen: bool = True) -> AsyncIterator[Runtime]:
    """Open everything; `listen` starts the bus's pub/sub reader (the API needs it, the worker not)."""
    async with AsyncExitStack() as stack:
        clients = await open_clients(settings, stack)
        redis = Redis.from_url(settings.redis_url, health_check_interval=30)
        stack.push_async_callback(redis.aclose)
        bus = RedisEventBus(
            redis,
            prefix=settings.redis_prefix,
            queue_size=settings.subscriber_queue_size,
            stream_maxlen=settings.event_stream_maxlen,
            stream_max_age_s=settings.event_stream_max_age_s,
        )
        if listen:
            await bus.start()
            stack.push_async_callback(bus.close)
        repo = DynamoMediaRepository(clients.dynamodb, settings.table)
        blobs = S3BlobStore(clients.s3, settings.bucket)
        policy = UploadPolicy(
            allowed_content_types=settings.allowed_content_types,
            max_upload_bytes=settings.max_upload_bytes,
            upload_url_ttl_s=settings.upload_url_ttl_s,
            pending_ttl_s=settings.pending_ttl_s,
            upload_prefix=settings.upload_prefix,
        )
        yield Runtime(
            settings=settings,
            clients=clients,
            redis=redis,
            bus=bus,
            repo=repo,
            blobs=blobs,
            tokens=JwtTokenVerifier(settings),
            uploads=UploadService(repo, blobs, bus, policy),
            gallery=GalleryService(repo, blobs, bus, CursorCodec(_cursor_key(settings))),
            processing=ProcessingService(repo, blobs, bus, upload_prefix=settings.upload_prefix),
        )
