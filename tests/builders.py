"""Builders for tests and benchmarks: a complete `Services` on the in-memory fakes.

`Services` has no optional fields (a process always has every service); a test that cares about
one part passes its own (a repository, a clock-driven rate limiter) and takes the rest from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.access.rate_limits import Limit, RateLimitPolicy, RateLimitService
from services.access.sessions import Sessions, SessionsDisabled
from services.bundle import Services
from services.community.engagement import EngagementService
from services.community.feed import FeedService
from services.community.social import SocialService
from services.core.audit import Auditor
from services.core.pagination import CursorCodec
from services.core.ports import MediaRepository
from services.ingest.uploads import UploadPolicy, UploadService
from services.library.account import AccountService
from services.library.editing import EditingService
from services.library.gallery import GalleryService
from services.library.retention import RetentionService
from services.library.review import ReviewService
from services.library.views import ViewService
from tests.fakes import (
    InMemoryAuditLog,
    InMemoryBlobStore,
    InMemoryEngagementStore,
    InMemoryEventBus,
    InMemoryMediaRepository,
    InMemoryRateLimiter,
    InMemorySnapshotStore,
    InMemorySocialStore,
    InMemoryViewRecorder,
)

DEFAULT_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "video/mp4")


@dataclass
class Fakes:
    """The in-memory adapters behind a built `Services`, for a test to seed and inspect."""

    repo: MediaRepository = field(default_factory=InMemoryMediaRepository)
    blobs: InMemoryBlobStore = field(default_factory=InMemoryBlobStore)
    bus: InMemoryEventBus = field(default_factory=InMemoryEventBus)
    engagement: InMemoryEngagementStore = field(default_factory=InMemoryEngagementStore)
    snapshots: InMemorySnapshotStore = field(default_factory=InMemorySnapshotStore)
    social: InMemorySocialStore = field(default_factory=InMemorySocialStore)
    views: InMemoryViewRecorder = field(default_factory=InMemoryViewRecorder)
    audit_log: InMemoryAuditLog = field(default_factory=InMemoryAuditLog)
    limiter: InMemoryRateLimiter = field(default_factory=InMemoryRateLimiter)


def build_services(
    fakes: Fakes | None = None,
    *,
    content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES,
    max_upload_bytes: int = 5 * 1024**3,
    rate_limits: RateLimitPolicy | None = None,
    sessions: Sessions | None = None,
) -> Services:
    """Every service wired as infra/roots/runtime.py wires it, on fakes. Rate limits are off
    unless a policy is given; sessions are disabled unless a service is given."""
    f = fakes or Fakes()
    cursors = CursorCodec(b"k" * 32)
    auditor = Auditor(f.audit_log, cursors)
    gallery = GalleryService(f.repo, f.blobs, f.bus, cursors, friends=f.social)
    retention = RetentionService(f.repo, f.blobs, f.bus, f.engagement, auditor, cursors)
    policy = UploadPolicy(content_types, max_upload_bytes, upload_url_ttl_s=900, pending_ttl_s=3600)
    off = RateLimitPolicy(per_user=Limit(60, 10), per_ip=Limit(60, 10), enabled=False)
    return Services(
        uploads=UploadService(f.repo, f.blobs, f.bus, policy, auditor=auditor),
        gallery=gallery,
        editing=EditingService(f.repo, f.bus, auditor=auditor),
        engagement=EngagementService(f.engagement, gallery, views=f.views),
        feed=FeedService(f.repo, gallery, f.engagement, f.snapshots, cursors),
        review=ReviewService(f.repo, f.bus),
        rate_limits=RateLimitService(f.limiter, rate_limits or off),
        retention=retention,
        audit=auditor,
        accounts=AccountService(f.repo, f.blobs, f.engagement, retention),
        social=SocialService(f.social, cursors),
        views=ViewService(f.views, f.engagement, f.repo, cursors),
        sessions=sessions or SessionsDisabled(),
    )
