"""Services: every domain service one request (or the worker) may use, built once by the
composition root (infra/roots/runtime.py) and handed to the GraphQL context. Plain data, so the
worker can hold it without loading Strawberry."""

from __future__ import annotations

from dataclasses import dataclass

from services.access.rate_limits import RateLimitService
from services.access.sessions import Sessions
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
    """Every field is required: a process has them all. Tests build theirs on the in-memory fakes
    (tests/builders.py); a feature that is off in a deployment is a service that says so
    (SessionsDisabled), not a None to check on every request."""

    uploads: UploadService
    gallery: GalleryService
    editing: EditingService
    engagement: EngagementService
    feed: FeedService
    review: ReviewService
    rate_limits: RateLimitService
    retention: RetentionService
    audit: Auditor
    accounts: AccountService
    social: SocialService
    views: ViewService
    sessions: Sessions
