"""Per-user quotas: bytes held and uploads in flight, checked before anything is created.

Usage is computed from the owner-by-status index (gsi2) at the moment of the check rather than
kept in counters. Counters would have to be moved by every path that changes a record (worker,
sweeper, abort, soft delete, purge) and drift the first time one forgets; a count over the index
is always right. The price: a read per status on each createUpload (a projection of `size`
only), and a window in which two concurrent createUploads of one user both pass the check. The
rate limit's burst bounds that overshoot; see docs/uploads.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.errors import BadUserInput
from services.core.media import MediaStatus, utcnow
from services.core.ports import MediaRepository

# Bytes a user "holds": stored, being checked, or reserved by an upload in flight.
HELD = (MediaStatus.PENDING, MediaStatus.PROCESSING, MediaStatus.COMPLETED, MediaStatus.QUARANTINED)


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    max_bytes_per_user: int
    max_pending_per_user: int


class QuotaService:
    def __init__(self, repo: MediaRepository, policy: QuotaPolicy) -> None:
        self._repo = repo
        self._policy = policy

    async def check_new_upload(self, owner_id: str, size: int) -> None:
        """Raises BadUserInput if one more upload of `size` bytes would exceed a quota."""
        now = utcnow()
        held = 0
        pending = 0
        for status in HELD:
            usage = await self._repo.owner_usage(owner_id, status, now=now)
            held += usage.bytes
            if status is MediaStatus.PENDING:
                pending = usage.count
        if pending >= self._policy.max_pending_per_user:
            raise BadUserInput(
                f"quota exceeded: {pending} uploads are already in progress (at most "
                f"{self._policy.max_pending_per_user}); finish or abort one first",
                field="quota",
                quota="pendingUploads",
            )
        if held + size > self._policy.max_bytes_per_user:
            raise BadUserInput(
                f"quota exceeded: you hold {held} bytes and this upload needs {size} more; "
                f"the limit is {self._policy.max_bytes_per_user} bytes",
                field="quota",
                quota="bytes",
            )
