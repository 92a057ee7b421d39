"""The review decision enum, registered on the service's own enum."""

from __future__ import annotations

import strawberry

from services.library.review import ReviewDecision

strawberry.enum(ReviewDecision, description="What an admin decides about quarantined media.")

__all__ = ["ReviewDecision"]
