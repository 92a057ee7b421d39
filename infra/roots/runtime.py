"""The process-wide parts, opened once and closed once: AWS clients, the Redis pool, the event
bus, the adapters and the services built on them. Used by the API, the worker and the CLI."""

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
from infra.redis.rate_limit import RedisRateLimiter
from infra.redis.sessions import RedisRefreshTokenStore
from infra.redis.snapshots import RedisSnapshotStore
from infra.settings import Settings
from services.access.rate_limits import Limit, RateLimitPolicy, RateLimitService
from services.access.sessions import SessionService
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


def _sessions(
    settings: Settings, redis: RedisClient
) -> tuple[SessionIssuer, TokenVerifier, SessionService | None]:
    """The service's own issuer, the verifier taking its tokens and the upstream ones, and the
    session service (None without an upstream identity provider)."""
    key = settings.session_signing_key
    issuer = SessionIssuer(
        key.get_secret_value() if key else None,
        issuer=settings.public_url.rstrip("/"),
        audience=settings.jwt_audience,
        ttl_s=settings.session_access_ttl_s,
    )
    tokens = IssuerAwareVerifier(issuer, JwtTokenVerifier(settings), leeway=settings.jwt_leeway_s)
    if not settings.idp_jwks_url:
        return issuer, tokens, None
    idp = settings.model_copy(
        update={
            "jwt_issuer": settings.idp_issuer,
            "jwt_audience": settings.idp_audience,
            "jwt_jwks_url": settings.idp_jwks_url,
            "jwt_algorithms": ("RS256", "ES256"),
            "jwt_secret": None,
        }
    )
    store = RedisRefreshTokenStore(redis, prefix=settings.redis_prefix, ttl_s=settings.session_refresh_ttl_s)
    return issuer, tokens, SessionService(JwtTokenVerifier(idp), issuer, store)


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, listen: bool = True, relay: bool = True
) -> AsyncIterator[Runtime]:
    """Open everything; `listen` starts the bus's pub/sub reader (the API needs it, the worker not),
    `relay` the outbox relay (home region only)."""
    async with AsyncExitStack() as stack:
        stack.enter_context(tracing_session(settings))
        clients = traced(await open_clients(settings, stack))
        redis = open_redis(settings.redis_url, cluster=settings.redis_cluster)
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
        outbox = OutboxBus(
            bus, clients.dynamodb, settings.table, relay_interval_s=settings.outbox_relay_interval_s
        )
        if relay and settings.is_home_region:
            # Only the home region relays: outbox items replicate with the table, and a replica
            # deleting one would delete it before the home region published it.
            relaying = asyncio.create_task(outbox.run(), name="outbox-relay")

            async def stop_relay() -> None:
                relaying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relaying

            stack.push_async_callback(stop_relay)
        repo = CachedMediaRepository(
            DynamoMediaRepository(clients.dynamodb, settings.table),
            redis,
            prefix=settings.redis_prefix,
            ttl_s=settings.page_cache_ttl_s,
        )
        blobs = S3BlobStore(clients.s3, settings.bucket)
        # Multi-region (docs/multi-region.md): uploads go to the home bucket, reads prefer the
        # local replica. One region: both are this region's bucket.
        upload_blobs: S3BlobStore = blobs
        read_blobs: S3BlobStore = blobs
        if not settings.is_home_region:
            upload_blobs = S3BlobStore(
                await open_s3(settings, stack, region=settings.home_region), settings.home_bucket
            )
            read_blobs = ReplicaAwareBlobStore(
                clients.s3,
                settings.bucket,
                home=upload_blobs,
                hit_ttl_s=settings.replica_hit_cache_s,
                miss_ttl_s=settings.replica_miss_cache_s,
            )
        policy = UploadPolicy(
            allowed_content_types=settings.allowed_content_types,
            max_upload_bytes=settings.max_upload_bytes,
            upload_url_ttl_s=settings.upload_url_ttl_s,
            pending_ttl_s=settings.pending_ttl_s,
            upload_prefix=settings.upload_prefix,
            derived_prefix=settings.derived_prefix,
            multipart_threshold_bytes=settings.multipart_threshold_bytes,
            part_size_bytes=settings.multipart_part_bytes,
        )
        quotas = QuotaService(
            QuotaPolicy(
                max_bytes_per_user=settings.quota_bytes_per_user,
                max_pending_per_user=settings.quota_pending_uploads_per_user,
            ),
        )
        rate_limits = RateLimitService(
            RedisRateLimiter(redis, prefix=settings.redis_prefix),
            RateLimitPolicy(
                per_user=Limit(settings.rate_limit_user_per_minute, settings.rate_limit_user_burst),
                per_ip=Limit(settings.rate_limit_ip_per_minute, settings.rate_limit_ip_burst),
                enabled=settings.rate_limit_enabled,
            ),
        )
        idempotency = DynamoIdempotencyStore(clients.dynamodb, settings.table)
        cursors = CursorCodec(_cursor_key(settings))
        urls = UrlMinter(
            _url_signer(settings, read_blobs),
            # In a replica region the URL depends on whether CRR has landed the object yet (the
            # replica-aware store checks); caching would pin the home bucket, so only the home
            # region caches minted URLs.
            RedisUrlCache(redis, settings.redis_prefix) if settings.is_home_region else None,
            ttl_s=settings.url_ttl_s,
        )
        social_store = DynamoSocialStore(clients.dynamodb, settings.table)
        gallery = GalleryService(
            repo,
            read_blobs,
            bus,
            cursors,
            friends=social_store,
            urls=urls,
            anonymous_reads=settings.anonymous_public_reads,
            url_ttl_s=settings.url_ttl_s,
        )
        engagement_store = DynamoEngagementStore(clients.dynamodb, settings.table)
        view_recorder = RedisViewRecorder(redis, settings.redis_prefix, log_length=settings.view_log_length)
        views = ViewService(view_recorder, engagement_store, repo, cursors, window_s=settings.view_window_s)
        auditor = Auditor(DynamoAuditLog(clients.dynamodb, settings.table), cursors)
        uploads = UploadService(
            repo, upload_blobs, outbox, policy, quotas=quotas, idempotency=idempotency, auditor=auditor
        )
        processing = ProcessingService(
            repo,
            blobs,
            # A replica region only re-announces what the home region wrote: straight to its bus.
            outbox if settings.is_home_region else bus,
            upload_prefix=settings.upload_prefix,
            quarantine_prefix=settings.quarantine_prefix,
            steps=await open_steps(settings, stack, repo, blobs),
            notifiers=await open_notifiers(settings, stack, redis),
            telemetry=OtelTelemetry(),
            auditor=auditor,
            announce_only=not settings.is_home_region,
            await_records_for=_await_records_for(settings),
        )
        retention = RetentionService(
            repo,
            blobs,
            outbox,
            engagement_store,
            auditor,
            cursors,
            RetentionPolicy(
                retention=timedelta(days=settings.retention_days),
                purge_lease=timedelta(seconds=settings.purge_lease_s),
            ),
        )
        review = ReviewService(repo, outbox)
        issuer, tokens, sessions = _sessions(settings, redis)
        services = Services(
            uploads=uploads,
            gallery=gallery,
            editing=EditingService(repo, outbox, auditor=auditor, settled_only=not settings.is_home_region),
            engagement=EngagementService(engagement_store, gallery, views=view_recorder),
            social=SocialService(social_store, cursors, urls),
            views=views,
            rate_limits=rate_limits,
            review=review,
            feed=FeedService(
                repo, gallery, engagement_store, RedisSnapshotStore(redis, settings.redis_prefix), cursors
            ),
            retention=retention,
            audit=auditor,
            accounts=AccountService(repo, blobs, engagement_store, retention),
            sessions=sessions,
        )
        yield Runtime(
            settings=settings,
            clients=clients,
            redis=redis,
            bus=bus,
            outbox=outbox,
            repo=repo,
            blobs=blobs,
            tokens=tokens,
            issuer=issuer,
            uploads=uploads,
            gallery=gallery,
            services=services,
            processing=processing,
            rate_limits=rate_limits,
            review=review,
            retention=retention,
            reconcile=ReconcileService(
                repo, blobs, engagement_store, auditor, processing, upload_prefix=settings.upload_prefix
            ),
        )
