"""Typed settings, read from the environment (prefix MEDIAGRAPH_) once, in the composition root."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CONTENT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/heic",
    "video/mp4",
    "video/quicktime",
)
# Placeholders that must never reach a deployed service.
_WEAK_SECRETS = {"changeme", "change-me", "secret", "dev", "development"}


CORS_SETTING = "MEDIAGRAPH_CORS_ORIGINS"
_DEFAULT_PORTS = {"http": 80, "https": 443}


# The decoding memory model of infra/media/images.py (DecodePlan.cost_bytes) at its worst: a HEIC
# of 4 bands decoded three times over (12 bytes a pixel), a 2048x2048 display variant at 12 bytes
# a pixel, and 16 MiB of decoder and encoder state.
DECODE_BYTES_PER_PIXEL_WORST = 12
DECODE_DISPLAY_BYTES = 12 * 2048 * 2048 + (16 << 20)


def normalize_origin(value: str) -> str:
    """An origin as browsers send it: lower-case scheme and host, no default port, no trailing
    slash. Raises ValueError naming the setting for anything that is not an http(s) origin."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{CORS_SETTING}: {value!r} is not an origin") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{CORS_SETTING}: {value!r} is not an origin like https://app.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{CORS_SETTING}: {value!r} has more than scheme://host[:port]")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


class Profile(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error names the setting, never its value (a secret, or
    # the whole input with every secret in it, for a model-level check): docs/security.md.
    model_config = SettingsConfigDict(
        env_prefix="MEDIAGRAPH_", env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    profile: Profile = Profile.DEVELOPMENT

    # AWS. An endpoint override is for the embedded moto stack only; production leaves it empty.
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    bucket: str = "mediagraph-media"
    table: str = "mediagraph"
    queue: str = "mediagraph-s3-events"
    dlq: str = "mediagraph-s3-events-dlq"
    max_receive_count: int = Field(default=5, ge=1, le=1000)
    queue_visibility_timeout_s: int = Field(default=60, ge=0, le=43200)
    upload_prefix: str = "uploads/"

    # Multi-region (docs/multi-region.md). This process serves `aws_region`. The home region takes
    # every upload and runs the pipeline; a replica region serves reads and re-announces, on its
    # own Redis, what replicates to it. No home region: one region, as before.
    home_region: str | None = None
    replica_regions: Annotated[tuple[str, ...], NoDecode] = ()
    # Media bucket of each OTHER region (CRR buckets differ by name): "us-east-1=bucket-a,...".
    region_buckets: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # Whether an object has replicated here (one HEAD) is remembered this long: briefly when it
    # has not (it may land any second), longer when it has (keys are never overwritten).
    replica_miss_cache_s: float = Field(default=5.0, ge=0, le=300)
    replica_hit_cache_s: float = Field(default=300.0, ge=0, le=86400)

    # Redis: the conventional REDIS_URL is honoured too.
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("MEDIAGRAPH_REDIS_URL", "REDIS_URL"),
    )
    # Pub/sub channels ignore the database number, so keys AND channels carry this prefix. No
    # braces: they would make a hash tag of it and put every key in one cluster slot.
    redis_prefix: str = Field(default="mg:", pattern=r"^[^{}]*$")
    # Redis Cluster (ElastiCache with cluster mode enabled): REDIS_URL names any node, usually
    # the configuration endpoint; the cluster client finds the rest. Pub/sub is sharded
    # (SSUBSCRIBE/SPUBLISH: Redis 7+). See docs/operations.md, "Redis Cluster".
    redis_cluster: bool = Field(
        default=False,
        validation_alias=AliasChoices("MEDIAGRAPH_REDIS_CLUSTER", "REDIS_CLUSTER"),
    )
    # Connections this process opens to Redis (per node on a cluster). A command that finds
    # them all busy waits up to redis_pool_timeout_s for one to come free (one node) instead of
    # failing at once, so a burst of requests queues rather than erroring.
    redis_max_connections: int = Field(default=64, ge=4, le=10_000)
    redis_pool_timeout_s: float = Field(default=2.0, gt=0, le=60)

    # Tokens. Development: HS256 with a shared secret. Production: RS256/ES256 from a JWKS URL.
    jwt_issuer: str = "mediagraph"
    jwt_audience: str = "mediagraph-api"
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_algorithms: Annotated[tuple[str, ...], NoDecode] = ("HS256",)
    jwt_leeway_s: int = Field(default=10, ge=0, le=30)
    jwks_cache_s: int = Field(default=300, ge=10)
    # An unknown kid refetches the JWKS at most once per this many seconds (key rotation).
    jwks_min_refetch_s: int = Field(default=30, ge=1)
    # Sessions (docs/security.md): the upstream identity provider whose ID tokens exchangeToken
    # accepts (unset: exchangeToken is unavailable), and this service's own ES256 key (PEM;
    # generated per process when unset, which only development may do).
    idp_jwks_url: str | None = None
    idp_issuer: str = ""
    idp_audience: str = "mediagraph"
    session_signing_key: SecretStr | None = None
    session_access_ttl_s: int = Field(default=300, ge=30, le=3600)
    session_refresh_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    # Signs pagination cursors. Defaults to a key derived from jwt_secret; required with JWKS.
    cursor_secret: SecretStr | None = None

    # Uploads.
    allowed_content_types: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CONTENT_TYPES
    max_upload_bytes: int = Field(default=5 * 1024**3, ge=1)
    upload_url_ttl_s: int = Field(default=900, ge=60, le=900)
    pending_ttl_s: int = Field(default=24 * 3600, ge=60)
    # Large uploads: above the threshold, S3 multipart with parts of this size (S3's minimum 5 MiB).
    multipart_threshold_bytes: int = Field(default=100 * 1024 * 1024, ge=5 * 1024 * 1024)
    multipart_part_bytes: int = Field(default=16 * 1024 * 1024, ge=5 * 1024 * 1024, le=5 * 1024**3)
    # Quotas per user: bytes held (stored, in review or in flight) and uploads PENDING at once.
    quota_bytes_per_user: int = Field(default=50 * 1024**3, ge=1)
    quota_pending_uploads_per_user: int = Field(default=20, ge=1)

    # Rate limits (token buckets in Redis) on mutations and expensive queries.
    rate_limit_enabled: bool = True
    # Every root field draws from these, reads included (schema/rate_limits.py).
    rate_limit_user_per_minute: float = Field(default=600, gt=0)
    rate_limit_user_burst: int = Field(default=120, ge=1)
    rate_limit_ip_per_minute: float = Field(default=1200, gt=0)
    rate_limit_ip_burst: int = Field(default=300, ge=1)
    # Proxies (addresses or CIDRs) whose X-Forwarded-For is believed; empty: the TCP peer is the client.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()

    # HTTP. The production profile turns GraphiQL, introspection and suggestions off whatever
    # `graphiql` says (docs/security.md).
    graphiql: bool = True
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Browser origins allowed to call the API (normalised: case, default port, trailing slash).
    # The development profile also allows http://localhost:*, http://127.0.0.1:* (infra/http/cors.py).
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    public_url: str = "http://127.0.0.1:8000"
    # Request heads and slow clients (docs/security.md): a header line, the whole head (request
    # line and headers) and the number of headers are capped (431 and close); a request must have
    # arrived whole (head and body) this many seconds after its first byte (408 and close).
    http_max_header_line_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    http_max_header_bytes: int = Field(default=64 * 1024, ge=4096, le=16 * 1024 * 1024)
    http_max_headers: int = Field(default=100, ge=10, le=10_000)
    http_read_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # Worker processes that parse and validate the documents the caches do not know, off the
    # event loop (schema/document_workers.py). Unset: two in the production profile (one on a
    # single core), none in development (the work stays in the API process, large documents in a
    # thread). 0: none.
    document_workers: int | None = Field(default=None, ge=0, le=32)
    # How they yield the CPU to the API process (docs/security.md, "Documents off the event
    # loop"): "idle", Linux SCHED_IDLE, they run only on CPU time nothing else wants and any
    # process that wakes takes their core at once; "batch", SCHED_BATCH at the niceness below.
    document_worker_policy: Literal["idle", "batch"] = "idle"
    # Their Unix niceness under "batch" (and where the policies do not exist): when they and the
    # API process both want a core, the event loop goes first. 0: the same priority.
    document_worker_nice: int = Field(default=10, ge=0, le=19)

    # Listing pages cached in Redis (invalidated by every write; the TTL only bounds memory).
    page_cache_ttl_s: int = Field(default=60, ge=1, le=3600)

    # Viewing. Anonymous callers may read PUBLIC media unless this is off.
    anonymous_public_reads: bool = True
    # Read URLs: S3 presigned GETs, or CloudFront signed URLs when all three are set.
    url_ttl_s: int = Field(default=300, ge=30, le=3600)
    cloudfront_domain: str | None = None
    cloudfront_key_pair_id: str | None = None
    cloudfront_private_key: SecretStr | None = None
    # Views: the same viewer counts once per window; the log keeps the newest N per media.
    view_window_s: int = Field(default=600, ge=1)
    view_log_length: int = Field(default=1000, ge=1, le=100_000)
    view_flush_every_s: float = Field(default=5.0, gt=0)

    # Realtime.
    subscriber_queue_size: int = Field(default=100, ge=1, le=10_000)
    # Replay (mediaEvents(since:)): each user's last events, bounded by count AND by age.
    event_stream_maxlen: int = Field(default=1000, ge=1, le=100_000)
    event_stream_max_age_s: int = Field(default=24 * 3600, ge=1)
    ws_init_timeout_s: float = Field(default=5.0, gt=0, le=10)
    # WebSocket limits, per API process (docs/security.md).
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    ws_max_subscriptions: int = Field(default=20, ge=1, le=1000)
    ws_max_connections_per_user: int = Field(default=10, ge=1)
    ws_max_connections_per_address: int = Field(default=100, ge=1)
    # A send to a client that does not read for this long disconnects it (a stalled reader).
    ws_send_timeout_s: float = Field(default=10.0, gt=0, le=120)

    # Retention (docs/retention.md): deleted media can be restored for this long, then is purged.
    retention_days: int = Field(default=30, ge=0, le=3650)
    purge_lease_s: int = Field(default=300, ge=1, le=86400)
    purge_every_s: float = Field(default=300.0, gt=0)
    # Bucket lifecycle: originals move to Glacier Instant Retrieval after this many days;
    # noncurrent versions (left by overwrites and deletes under versioning) expire after this many.
    archive_after_days: int = Field(default=90, ge=1)
    noncurrent_version_days: int = Field(default=30, ge=1)

    # Worker.
    worker_wait_s: int = Field(default=10, ge=0, le=20)
    worker_batch: int = Field(default=10, ge=1, le=10)
    # Seconds between the outbox relay's passes when nothing failed (after a failed publish it
    # retries every 0.5 s): the longest a committed change whose writer died waits for its event.
    outbox_relay_interval_s: float = Field(default=2.0, gt=0, le=60)
    # How long a dependency (Redis, S3, DynamoDB) may be unreachable while the worker holds a
    # message and retries it, without spending its receives: an outage up to this long never
    # sends a message to the DLQ (docs/operations.md, "Outages").
    worker_outage_tolerance_s: float = Field(default=300.0, ge=0, le=3600)
    # Messages one worker handles at once; 0: four per core (docs/processing.md, "Concurrency").
    worker_concurrency: int = Field(default=0, ge=0, le=256)
    # Threads that decode and encode images; 0: one per core.
    worker_image_threads: int = Field(default=0, ge=0, le=64)
    # MiB of decoded pixels the worker may hold at once across its messages; a decode waits for
    # room. Must fit the largest image MAX_IMAGE_PIXELS admits (12 bytes a pixel, for HEIC).
    worker_decode_budget_mb: int = Field(default=1024, ge=16)
    # Seconds the worker lets messages in hand finish at shutdown before returning them to the queue.
    worker_shutdown_grace_s: float = Field(default=20.0, ge=0, le=300)
    # Prometheus /metrics, on listeners of their own, never on the API's port (docs/operations.md):
    # the API's on metrics_port, the worker's on worker_metrics_port, both on metrics_host. Loopback
    # by default: only the host, or a sidecar in the same task, can scrape. 0 turns one off.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)

    # Tracing (OpenTelemetry, OTLP over HTTP; the ADOT collector forwards to X-Ray).
    otel_enabled: bool = False
    otel_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    otel_service_name: str = "mediagraph"

    # Processing pipeline. Derived and quarantined objects live outside the upload prefix.
    derived_prefix: str = "derived/"
    quarantine_prefix: str = "quarantine/"
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    duplicate_max_distance: int = Field(default=6, ge=0, le=32)
    moderation_backend: Literal["local", "rekognition"] = "local"
    moderation_blocked_terms: Annotated[tuple[str, ...], NoDecode] = ()
    moderation_blocked_sha256: Annotated[tuple[str, ...], NoDecode] = ()
    moderation_min_confidence: float = Field(default=80.0, ge=0, le=100)
    rekognition_endpoint_url: str | None = None
    # Videos: ffprobe checks the container, ffmpeg grabs a poster frame. Empty: videos are
    # accepted on their magic bytes and checksum alone.
    ffprobe_path: str = "ffprobe"
    ffmpeg_path: str = "ffmpeg"
    video_probe_timeout_s: float = Field(default=120.0, gt=0)
    # ClamAV through clamd (besides the built-in EICAR check): a host, or a Unix socket.
    clamd_host: str | None = None
    clamd_port: int = Field(default=3310, ge=1, le=65535)
    clamd_socket: str | None = None
    clamd_timeout_s: float = Field(default=60.0, gt=0)

    # Notifications of completed uploads, besides subscriptions: an SNS topic and/or a webhook.
    sns_topic_arn: str | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator(
        "jwt_algorithms",
        "allowed_content_types",
        "cors_origins",
        "trusted_proxies",
        "moderation_blocked_terms",
        "moderation_blocked_sha256",
        "replica_regions",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _normalize_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Browsers send "https://app.example.com": "HTTPS://App.example.com/" must match it.
        return tuple(dict.fromkeys(normalize_origin(origin) for origin in value))

    @field_validator("home_region", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # An empty variable (a template parameter left blank) means one region.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("region_buckets", mode="before")
    @classmethod
    def _split_pairs(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = {}
            for part in (p.strip() for p in value.split(",")):
                if not part:
                    continue
                region, sep, bucket = part.partition("=")
                if not sep or not region.strip() or not bucket.strip():
                    raise ValueError(f"MEDIAGRAPH_REGION_BUCKETS: {part!r} is not region=bucket")
                pairs[region.strip()] = bucket.strip()
            return pairs
        return value

    @model_validator(mode="after")
    def _check_keys(self) -> Settings:
        # Each group checks itself when it is built (TokenConfig: key families, secrets): building
        # them here refuses a bad environment at start-up, naming the variable.
        self.tokens  # noqa: B018
        cloudfront = (self.cloudfront_domain, self.cloudfront_key_pair_id, self.cloudfront_private_key)
        if any(cloudfront) and not all(cloudfront):
            raise ValueError(
                "CloudFront URLs need MEDIAGRAPH_CLOUDFRONT_DOMAIN, _KEY_PAIR_ID and _PRIVATE_KEY"
            )
        if self.cursor_secret is None and self.jwt_secret is None:
            raise ValueError("MEDIAGRAPH_CURSOR_SECRET is required when no JWT secret is set")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ValueError(f"MEDIAGRAPH_TRUSTED_PROXIES: {proxy!r} is not an address or CIDR") from exc
        if self.webhook_url and (
            self.webhook_secret is None or len(self.webhook_secret.get_secret_value()) < 32
        ):
            raise ValueError("MEDIAGRAPH_WEBHOOK_SECRET (at least 32 bytes) is required with a webhook URL")
        for prefix in (self.derived_prefix, self.quarantine_prefix):
            if prefix.startswith(self.upload_prefix) or self.upload_prefix.startswith(prefix):
                # Objects written there would trigger the worker again, or be taken for uploads.
                raise ValueError("derived and quarantine prefixes must lie outside the upload prefix")
        if self.home_region is not None:
            if self.home_region in self.replica_regions:
                raise ValueError("MEDIAGRAPH_HOME_REGION must not be one of MEDIAGRAPH_REPLICA_REGIONS")
            if self.aws_region != self.home_region and self.aws_region not in self.replica_regions:
                raise ValueError("MEDIAGRAPH_AWS_REGION must be the home region or a replica region")
            if self.aws_region != self.home_region and self.home_region not in self.region_buckets:
                raise ValueError("a replica region needs the home bucket in MEDIAGRAPH_REGION_BUCKETS")
        elif self.replica_regions:
            raise ValueError("MEDIAGRAPH_REPLICA_REGIONS needs MEDIAGRAPH_HOME_REGION")
        # The largest admissible image must fit the budget, or it could never be decoded.
        worst = self.max_image_pixels * DECODE_BYTES_PER_PIXEL_WORST + DECODE_DISPLAY_BYTES
        if self.worker_decode_budget_mb * 2**20 < worst:
            raise ValueError(
                "MEDIAGRAPH_WORKER_DECODE_BUDGET_MB is too small for MEDIAGRAPH_MAX_IMAGE_PIXELS: "
                f"at least {-(-worst // 2**20)} MiB"
            )
        if self.idp_jwks_url and not self.idp_issuer:
            raise ValueError("MEDIAGRAPH_IDP_ISSUER is required with MEDIAGRAPH_IDP_JWKS_URL")
        if self.idp_jwks_url:
            self.idp_tokens  # noqa: B018
        if self.profile is Profile.PRODUCTION and self.aws_endpoint_url:
            raise ValueError("the production profile talks to real AWS: unset MEDIAGRAPH_AWS_ENDPOINT_URL")
        return self

    # The groups: each adapter receives its own (docs/architecture.md), built from the validated
    # fields above; the environment variable names stay those of the fields.
    @property
    def aws(self) -> AwsConfig:
        return AwsConfig(
            region=self.aws_region,
            endpoint_url=self.aws_endpoint_url,
            bucket=self.bucket,
            table=self.table,
            queue=self.queue,
            dlq=self.dlq,
            max_receive_count=self.max_receive_count,
            queue_visibility_timeout_s=self.queue_visibility_timeout_s,
            upload_prefix=self.upload_prefix,
            pending_ttl_s=self.pending_ttl_s,
            archive_after_days=self.archive_after_days,
            noncurrent_version_days=self.noncurrent_version_days,
            cors_origins=self.cors_origins,
        )

    @property
    def redis(self) -> RedisConfig:
        return RedisConfig(
            url=self.redis_url,
            prefix=self.redis_prefix,
            cluster=self.redis_cluster,
            max_connections=self.redis_max_connections,
            pool_timeout_s=self.redis_pool_timeout_s,
        )

    @property
    def tokens(self) -> TokenConfig:
        """The access tokens this API accepts from clients (besides its own session tokens)."""
        return TokenConfig(
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            secret=self.jwt_secret,
            jwks_url=self.jwt_jwks_url,
            algorithms=self.jwt_algorithms,
            leeway_s=self.jwt_leeway_s,
            jwks_cache_s=self.jwks_cache_s,
            jwks_min_refetch_s=self.jwks_min_refetch_s,
        )

    @property
    def idp_tokens(self) -> TokenConfig:
        """The upstream identity provider's ID tokens (exchangeToken): asymmetric keys from its
        JWKS, checked like `tokens` (no copy of the settings that would skip validation)."""
        return TokenConfig(
            issuer=self.idp_issuer,
            audience=self.idp_audience,
            secret=None,
            jwks_url=self.idp_jwks_url,
            algorithms=("RS256", "ES256"),
            leeway_s=self.jwt_leeway_s,
            jwks_cache_s=self.jwks_cache_s,
            jwks_min_refetch_s=self.jwks_min_refetch_s,
            variable="MEDIAGRAPH_IDP",
        )

    @property
    def tracing(self) -> TracingConfig:
        return TracingConfig(
            enabled=self.otel_enabled, endpoint=self.otel_endpoint, service_name=self.otel_service_name
        )

    @property
    def server(self) -> ServerConfig:
        return ServerConfig(
            max_header_line_bytes=self.http_max_header_line_bytes,
            max_header_bytes=self.http_max_header_bytes,
            max_headers=self.http_max_headers,
            read_timeout_s=self.http_read_timeout_s,
            ws_send_timeout_s=self.ws_send_timeout_s,
            ws_max_message_bytes=self.ws_max_message_bytes,
        )

    @property
    def worker_cores(self) -> int:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    @property
    def effective_worker_concurrency(self) -> int:
        return self.worker_concurrency or 4 * self.worker_cores

    @property
    def effective_image_threads(self) -> int:
        return self.worker_image_threads or self.worker_cores

    @property
    def effective_document_workers(self) -> int:
        if self.document_workers is not None:
            return self.document_workers
        return min(2, self.worker_cores) if self.is_production else 0

    @property
    def is_production(self) -> bool:
        return self.profile is Profile.PRODUCTION

    @property
    def is_home_region(self) -> bool:
        """True in a single-region deployment, and in the home region of a multi-region one."""
        return self.home_region is None or self.home_region == self.aws_region

    @property
    def home_bucket(self) -> str:
        """Where uploads go: this region's bucket at home, the home region's bucket elsewhere."""
        if self.is_home_region:
            return self.bucket
        assert self.home_region is not None  # is_home_region
        return self.region_buckets[self.home_region]


class ConfigurationError(ValueError):
    """A setting the process being started needs and does not have (named, never its value)."""


def check_api_settings(settings: Settings) -> None:
    """What only the API needs, checked when the API is built: the worker and one-off tasks run
    without the session signing key (the worker parses untrusted files: it must not hold a key
    that mints tokens)."""
    if settings.is_production and settings.session_signing_key is None:
        raise ConfigurationError(
            "the production API needs MEDIAGRAPH_SESSION_SIGNING_KEY (EC P-256 PEM): without it each "
            "process would sign with a key of its own"
        )


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem, naming the variable and never echoing its value (it may be a secret):
    "MEDIAGRAPH_JWT_LEEWAY_S: Input should be less than or equal to 30"."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False, include_context=False):
        field = ".".join(str(part) for part in problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"MEDIAGRAPH_{field.upper()}: {message}" if field else message)
    return lines


# The settings groups. Plain frozen values built by `Settings` from its validated fields; an
# adapter takes its group and never the whole Settings, so what it may read is its signature.


@dataclass(frozen=True, slots=True)
class AwsConfig:
    """The AWS endpoint and the resources this deployment uses, as they are shaped."""

    region: str
    endpoint_url: str | None
    bucket: str
    table: str
    queue: str
    dlq: str
    max_receive_count: int = 5
    queue_visibility_timeout_s: int = 60
    upload_prefix: str = "uploads/"
    pending_ttl_s: int = 24 * 3600
    archive_after_days: int = 90
    noncurrent_version_days: int = 30
    cors_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str
    # Pub/sub channels ignore the database number, so keys AND channels carry this prefix.
    prefix: str
    cluster: bool = False  # Redis Cluster (sharded pub/sub) rather than one node
    max_connections: int = 64  # per node
    pool_timeout_s: float = 2.0  # how long a command waits for a free connection (one node)


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """How one kind of bearer token is verified. Checked when built: the API's own and the
    identity provider's alike."""

    issuer: str
    audience: str
    secret: SecretStr | None
    jwks_url: str | None
    algorithms: tuple[str, ...]
    leeway_s: int = 10
    jwks_cache_s: int = 300
    jwks_min_refetch_s: int = 30
    variable: str = "MEDIAGRAPH_JWT"  # the variables' prefix, for error messages

    def __post_init__(self) -> None:
        uses_hmac = any(alg.startswith("HS") for alg in self.algorithms)
        uses_keys = any(not alg.startswith("HS") for alg in self.algorithms)
        if not self.algorithms:
            raise ValueError(f"{self.variable}_ALGORITHMS must name at least one algorithm")
        if uses_hmac and uses_keys:
            # Mixing families invites HS/RS confusion attacks.
            raise ValueError("jwt_algorithms must be all HS* or all RS*/ES*")
        if uses_hmac:
            if self.secret is None:
                raise ValueError(f"{self.variable}_SECRET is required for HS* algorithms")
            secret = self.secret.get_secret_value()
            if len(secret.encode()) < 32 or secret.lower() in _WEAK_SECRETS:
                raise ValueError(f"{self.variable}_SECRET must be at least 32 bytes of real secret")
        if uses_keys and not self.jwks_url:
            raise ValueError(f"{self.variable}_JWKS_URL is required for RS*/ES* algorithms")
        if not self.issuer:
            raise ValueError(f"{self.variable}_ISSUER must not be empty")


@dataclass(frozen=True, slots=True)
class TracingConfig:
    enabled: bool
    endpoint: str
    service_name: str


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the HTTP and WebSocket protocols under uvicorn enforce (infra/http/server.py)."""

    max_header_line_bytes: int
    max_header_bytes: int
    max_headers: int
    read_timeout_s: float
    ws_send_timeout_s: float
    ws_max_message_bytes: int
