"""Services: every domain service one request (or the worker) may use, built once by the
composition root (infra/roots/runtime.py) and handed to the GraphQL context. Plain data, so the
worker can hold it without loading Strawberry."""

from __future__ import annotations

from dataclasses import dataclass

from services.access.rate_limits import RateLimitService
from services.access.sessions import SessionService
from services.community.engagement import EngagementService
from services.community.feed import FeedService
from services.community.social import SocialService
from services.core.audit import Auditor
from services.ingest.uploads import UploadService
from services.library.account import AccountService
from services.library.editing import EditingService
from services.library.gallery import GalleryService
from services.library.retention import RetentionService
from services.library.review import ReviewService
from services.library.views import ViewService


@dataclass(frozen=True, slots=True)
class Services:
    uploads: UploadService
    gallery: GalleryService
    editing: EditingService
    engagement: EngagementService
    feed: FeedService
    review: ReviewService
    rate_limits: RateLimitService | None = None  # None: no limits (unit tests, benchmarks)
    retention: RetentionService | None = None  # None: delete/restore/trash unavailable
    audit: Auditor | None = None
    accounts: AccountService | None = None
    social: SocialService | None = None  # None: friends unavailable (unit tests, benchmarks)
    views: ViewService | None = None
    sessions: SessionService | None = None  # None: no upstream identity provider configured
