"""The process-wide parts, opened once and closed once: AWS clients, the Redis pool, the event
bus, the adapters and the services built on them. Used by the API, the worker and the CLI.

Read top to bottom: `open_runtime` opens the adapters (`_open_adapters`), then builds the domain
services on them (`_build_services`) and the worker's pipeline (`_open_processing`). Each builder
takes what it needs as arguments, so the order of the calls is the order of the data, and a
builder called before what it needs exists does not type-check."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from infra.aws.clients import AwsClients, open_clients, open_s3, traced
from infra.aws.cloudfront import CloudFrontUrlSigner, PresignedGetSigner
from infra.aws.dynamo import DynamoMediaRepository
from infra.aws.dynamo_audit import DynamoAuditLog
from infra.aws.dynamo_engagement import DynamoEngagementStore
from infra.aws.dynamo_social import DynamoSocialStore
from infra.aws.idempotency import DynamoIdempotencyStore
from infra.aws.outbox import OutboxBus
from infra.aws.regions import ReplicaAwareBlobStore
from infra.aws.s3 import S3BlobStore
from infra.identity.jwt import JwtTokenVerifier
from infra.identity.session_issuer import IssuerAwareVerifier, SessionIssuer
from infra.media.pipeline import open_notifiers, open_steps
from infra.observability.tracing import OtelTelemetry
from infra.observability.tracing import session as tracing_session
from infra.redis.bus import RedisEventBus
from infra.redis.client import RedisClient, open_redis
from infra.redis.delivery import RedisUrlCache, RedisViewRecorder
from infra.redis.page_cache import CachedMediaRepository
from infra.redis.rate_limit import FallbackRateLimiter, LocalRateLimiter, RedisRateLimiter
from infra.redis.sessions import RedisRefreshTokenStore
from infra.redis.snapshots import RedisSnapshotStore
from infra.settings import Settings
from services.access.rate_limits import Limit, RateLimitPolicy, RateLimitService
from services.access.sessions import Sessions, SessionsDisabled, SessionService
from services.bundle import Services
from services.community.engagement import EngagementService
from services.community.feed import FeedService
from services.community.social import SocialService
from services.core.audit import Auditor
from services.core.pagination import CursorCodec
from services.core.ports import TokenVerifier, UrlSigner
from services.ingest.processing import ProcessingService
from services.ingest.quotas import QuotaPolicy, QuotaService
from services.ingest.reconcile import ReconcileService
from services.ingest.uploads import UploadPolicy, UploadService
from services.library.account import AccountService
from services.library.delivery import UrlMinter
from services.library.editing import EditingService
from services.library.gallery import GalleryService
from services.library.retention import RetentionPolicy, RetentionService
from services.library.review import ReviewService
from services.library.views import ViewService


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    clients: AwsClients
    redis: RedisClient
    bus: RedisEventBus
    # What services publish through: the outbox's writer side and its relay (infra/aws/outbox.py).
    outbox: OutboxBus
    repo: CachedMediaRepository
    blobs: S3BlobStore
    tokens: TokenVerifier
    issuer: SessionIssuer
    uploads: UploadService
    gallery: GalleryService
    processing: ProcessingService
    services: Services
    rate_limits: RateLimitService
    review: ReviewService
    retention: RetentionService
    reconcile: ReconcileService


@dataclass(frozen=True, slots=True)
class _Adapters:
    """Every adapter of the process, opened."""

    clients: AwsClients
    redis: RedisClient
    bus: RedisEventBus
    outbox: OutboxBus
    repo: CachedMediaRepository
    blobs: S3BlobStore  # this region's bucket: the pipeline's, the purge's
    upload_blobs: S3BlobStore  # where uploads go: the home region's bucket
    read_blobs: S3BlobStore  # where reads go: the local replica when it has the object
    engagement: DynamoEngagementStore
    social: DynamoSocialStore
    views: RedisViewRecorder
    auditor: Auditor
    cursors: CursorCodec


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, listen: bool = True, relay: bool = True
) -> AsyncIterator[Runtime]:
    """Open everything; `listen` starts the bus's pub/sub reader (the API needs it, the worker not),
    `relay` the outbox relay (home region only)."""
    async with AsyncExitStack() as stack:
        stack.enter_context(tracing_session(settings.tracing))
        adapters = await _open_adapters(settings, stack, listen=listen)
        if relay and settings.is_home_region:
            # Only the home region relays: outbox items replicate with the table, and a replica
            # deleting one would delete it before the home region published it.
            _start_relay(stack, adapters.outbox)
        issuer, tokens, sessions = _identity(settings, adapters.redis)
        services = _build_services(settings, adapters, sessions)
        processing = await _open_processing(settings, stack, adapters)
        yield Runtime(
            settings=settings,
            clients=adapters.clients,
            redis=adapters.redis,
            bus=adapters.bus,
            outbox=adapters.outbox,
            repo=adapters.repo,
            blobs=adapters.blobs,
            tokens=tokens,
            issuer=issuer,
            uploads=services.uploads,
            gallery=services.gallery,
            services=services,
            processing=processing,
            rate_limits=services.rate_limits,
            review=services.review,
            retention=services.retention,
            reconcile=ReconcileService(
                adapters.repo,
                adapters.blobs,
                adapters.engagement,
                adapters.auditor,
                processing,
                upload_prefix=settings.upload_prefix,
            ),
        )


async def _open_adapters(settings: Settings, stack: AsyncExitStack, *, listen: bool) -> _Adapters:
    clients = traced(await open_clients(settings.aws, stack))
    redis = open_redis(settings.redis)
    stack.push_async_callback(redis.aclose)
    prefix = settings.redis.prefix
    bus = RedisEventBus(
        redis,
        prefix=prefix,
        queue_size=settings.subscriber_queue_size,
        stream_maxlen=settings.event_stream_maxlen,
        stream_max_age_s=settings.event_stream_max_age_s,
    )
    if listen:
        await bus.start()
        stack.push_async_callback(bus.close)
    outbox = OutboxBus(
        bus, clients.dynamodb, settings.table, relay_interval_s=settings.outbox_relay_interval_s
    )
    repo = CachedMediaRepository(
        DynamoMediaRepository(clients.dynamodb, settings.table),
        redis,
        prefix=prefix,
        ttl_s=settings.page_cache_ttl_s,
    )
    blobs, upload_blobs, read_blobs = await _open_blob_stores(settings, stack, clients)
    cursors = CursorCodec(_cursor_key(settings))
    return _Adapters(
        clients=clients,
        redis=redis,
        bus=bus,
        outbox=outbox,
        repo=repo,
        blobs=blobs,
        upload_blobs=upload_blobs,
        read_blobs=read_blobs,
        engagement=DynamoEngagementStore(clients.dynamodb, settings.table),
        social=DynamoSocialStore(clients.dynamodb, settings.table),
        views=RedisViewRecorder(redis, prefix, log_length=settings.view_log_length),
        auditor=Auditor(DynamoAuditLog(clients.dynamodb, settings.table), cursors),
        cursors=cursors,
    )


async def _open_blob_stores(
    settings: Settings, stack: AsyncExitStack, clients: AwsClients
) -> tuple[S3BlobStore, S3BlobStore, S3BlobStore]:
    """This region's bucket, the bucket uploads go to, the bucket reads prefer. Multi-region
    (docs/multi-region.md): uploads go to the home bucket, reads prefer the local replica. One
    region: all three are this region's bucket."""
    blobs = S3BlobStore(clients.s3, settings.bucket)
    if settings.is_home_region:
        return blobs, blobs, blobs
    home = S3BlobStore(await open_s3(settings.aws, stack, region=settings.home_region), settings.home_bucket)
    replica = ReplicaAwareBlobStore(
        clients.s3,
        settings.bucket,
        home=home,
        hit_ttl_s=settings.replica_hit_cache_s,
        miss_ttl_s=settings.replica_miss_cache_s,
    )
    return blobs, home, replica


def _build_services(settings: Settings, a: _Adapters, sessions: Sessions) -> Services:
    gallery = GalleryService(
        a.repo,
        a.read_blobs,
        a.bus,
        a.cursors,
        friends=a.social,
        urls=(urls := _url_minter(settings, a)),
        anonymous_reads=settings.anonymous_public_reads,
        url_ttl_s=settings.url_ttl_s,
    )
    retention = RetentionService(
        a.repo,
        a.blobs,
        a.outbox,
        a.engagement,
        a.auditor,
        a.cursors,
        RetentionPolicy(
            retention=timedelta(days=settings.retention_days),
            purge_lease=timedelta(seconds=settings.purge_lease_s),
        ),
    )
    quotas = QuotaService(
        QuotaPolicy(
            max_bytes_per_user=settings.quota_bytes_per_user,
            max_pending_per_user=settings.quota_pending_uploads_per_user,
        ),
    )
    uploads = UploadService(
        a.repo,
        a.upload_blobs,
        a.outbox,
        _upload_policy(settings),
        quotas=quotas,
        idempotency=DynamoIdempotencyStore(a.clients.dynamodb, settings.table),
        auditor=a.auditor,
    )
    return Services(
        uploads=uploads,
        gallery=gallery,
        editing=EditingService(a.repo, a.outbox, auditor=a.auditor, settled_only=not settings.is_home_region),
        engagement=EngagementService(a.engagement, gallery, views=a.views),
        social=SocialService(a.social, a.cursors, urls),
        views=ViewService(a.views, a.engagement, a.repo, a.cursors, window_s=settings.view_window_s),
        rate_limits=_rate_limits(settings, a.redis),
        review=ReviewService(a.repo, a.outbox),
        feed=FeedService(
            a.repo, gallery, a.engagement, RedisSnapshotStore(a.redis, settings.redis.prefix), a.cursors
        ),
        retention=retention,
        audit=a.auditor,
        accounts=AccountService(a.repo, a.blobs, a.engagement, retention),
        sessions=sessions,
    )


async def _open_processing(settings: Settings, stack: AsyncExitStack, a: _Adapters) -> ProcessingService:
    return ProcessingService(
        a.repo,
        a.blobs,
        # A replica region only re-announces what the home region wrote: straight to its bus.
        a.outbox if settings.is_home_region else a.bus,
        upload_prefix=settings.upload_prefix,
        quarantine_prefix=settings.quarantine_prefix,
        steps=await open_steps(settings, stack, a.repo, a.blobs),
        notifiers=await open_notifiers(settings, stack, a.redis),
        telemetry=OtelTelemetry(),
        auditor=a.auditor,
        announce_only=not settings.is_home_region,
        await_records_for=_await_records_for(settings),
    )


def _start_relay(stack: AsyncExitStack, outbox: OutboxBus) -> None:
    relaying = asyncio.create_task(outbox.run(), name="outbox-relay")

    async def stop_relay() -> None:
        relaying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relaying

    stack.push_async_callback(stop_relay)


def _identity(settings: Settings, redis: RedisClient) -> tuple[SessionIssuer, TokenVerifier, Sessions]:
    """The service's own issuer, the verifier taking its tokens and the upstream ones, and the
    session service (disabled without an upstream identity provider)."""
    key = settings.session_signing_key
    issuer = SessionIssuer(
        key.get_secret_value() if key else None,
        issuer=settings.public_url.rstrip("/"),
        audience=settings.jwt_audience,
        ttl_s=settings.session_access_ttl_s,
    )
    tokens = IssuerAwareVerifier(issuer, JwtTokenVerifier(settings.tokens), leeway=settings.jwt_leeway_s)
    if not settings.idp_jwks_url:
        return issuer, tokens, SessionsDisabled()
    store = RedisRefreshTokenStore(redis, prefix=settings.redis.prefix, ttl_s=settings.session_refresh_ttl_s)
    return issuer, tokens, SessionService(JwtTokenVerifier(settings.idp_tokens), issuer, store)


def _upload_policy(settings: Settings) -> UploadPolicy:
    return UploadPolicy(
        allowed_content_types=settings.allowed_content_types,
        max_upload_bytes=settings.max_upload_bytes,
        upload_url_ttl_s=settings.upload_url_ttl_s,
        pending_ttl_s=settings.pending_ttl_s,
        upload_prefix=settings.upload_prefix,
        derived_prefix=settings.derived_prefix,
        multipart_threshold_bytes=settings.multipart_threshold_bytes,
        part_size_bytes=settings.multipart_part_bytes,
    )


def _rate_limits(settings: Settings, redis: RedisClient) -> RateLimitService:
    return RateLimitService(
        # Redis down: per-process buckets (infra/redis/rate_limit.py), not no limit at all.
        FallbackRateLimiter(RedisRateLimiter(redis, prefix=settings.redis.prefix), LocalRateLimiter()),
        RateLimitPolicy(
            per_user=Limit(settings.rate_limit_user_per_minute, settings.rate_limit_user_burst),
            per_ip=Limit(settings.rate_limit_ip_per_minute, settings.rate_limit_ip_burst),
            enabled=settings.rate_limit_enabled,
        ),
    )


def _url_minter(settings: Settings, a: _Adapters) -> UrlMinter:
    # In a replica region the URL depends on whether CRR has landed the object yet (the
    # replica-aware store checks); caching would pin the home bucket, so only the home region
    # caches minted URLs.
    cache = RedisUrlCache(a.redis, settings.redis.prefix) if settings.is_home_region else None
    return UrlMinter(_url_signer(settings, a.read_blobs), cache, ttl_s=settings.url_ttl_s)


def _cursor_key(settings: Settings) -> bytes:
    # Derived, not shared: a leaked cursor key would not forge tokens.
    source = settings.cursor_secret or settings.jwt_secret
    assert source is not None  # enforced by Settings
    secret = source.get_secret_value()
    return hashlib.sha256(b"mediagraph-cursor\0" + secret.encode()).digest()


def _url_signer(settings: Settings, blobs: S3BlobStore) -> UrlSigner:
    if settings.cloudfront_domain and settings.cloudfront_key_pair_id and settings.cloudfront_private_key:
        return CloudFrontUrlSigner(
            settings.cloudfront_domain,
            settings.cloudfront_key_pair_id,
            settings.cloudfront_private_key.get_secret_value().encode(),
        )
    return PresignedGetSigner(blobs)


def _await_records_for(settings: Settings) -> timedelta:
    # Multi-region only: an upload created through another region may reach the worker before
    # its record reaches this region's table; retry its event for as long as the URL was valid.
    if settings.home_region is None:
        return timedelta(0)
    return timedelta(seconds=settings.upload_url_ttl_s + 300)
