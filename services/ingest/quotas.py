"""Per-user quotas: bytes held and uploads in flight, reserved atomically with the upload.

The owner's counters (uploads per status, bytes held) live beside the records and move in the
same transaction as every create, transition and delete (infra/aws/dynamo.py). A new upload's
create is conditional on them: it reserves a pending upload and its declared bytes, or is refused,
in one atomic write. Two concurrent createUploads can no longer both pass a check made before
either wrote (the audit: 25 concurrent createUploads against a pending limit of 20 all succeeded,
and 100 GiB was declared against 50 GiB). The reservation is released by the same transactions:
pending once the upload is processed, aborted or swept after it expired; bytes once the media is
rejected, deleted or its upload abandoned. See docs/uploads.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.errors import BadUserInput
from services.core.ports import Quota, QuotaExceeded


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    max_bytes_per_user: int
    max_pending_per_user: int


class QuotaService:
    def __init__(self, policy: QuotaPolicy) -> None:
        self._policy = policy

    @property
    def quota(self) -> Quota:
        """What MediaRepository.create reserves against."""
        return Quota(max_pending=self._policy.max_pending_per_user, max_bytes=self._policy.max_bytes_per_user)

    def refusal(self, exceeded: QuotaExceeded, size: int) -> BadUserInput:
        """The client's error for a create the counters refused."""
        if exceeded.kind == "pendingUploads":
            return BadUserInput(
                f"quota exceeded: {exceeded.pending} uploads are already in progress (at most "
                f"{self._policy.max_pending_per_user}); finish or abort one first",
                field="quota",
                quota="pendingUploads",
            )
        return BadUserInput(
            f"quota exceeded: you hold {exceeded.held_bytes} bytes and this upload needs {size} more; "
            f"the limit is {self._policy.max_bytes_per_user} bytes",
            field="quota",
            quota="bytes",
        )
