"""Archive storage classes: whether an original can be read now, or must be restored first.

The bucket's lifecycle moves old originals to Glacier Instant Retrieval, which serves GETs in
milliseconds: such media views as before. Objects in Glacier Flexible Retrieval or Deep Archive
(put there by hand or by another rule) answer a GET with InvalidObjectState until restored.
"""

from __future__ import annotations

from enum import StrEnum

from services.core.ports import BlobInfo

# Storage classes whose objects need a RestoreObject before they can be read.
NEEDS_RESTORE = frozenset({"GLACIER", "DEEP_ARCHIVE"})


class Availability(StrEnum):
    AVAILABLE = "AVAILABLE"
    RESTORE_REQUIRED = "RESTORE_REQUIRED"
    RESTORE_IN_PROGRESS = "RESTORE_IN_PROGRESS"
    MISSING = "MISSING"


def availability_of(info: BlobInfo | None) -> Availability:
    if info is None:
        return Availability.MISSING
    if (info.storage_class or "STANDARD") not in NEEDS_RESTORE:
        return Availability.AVAILABLE
    # S3's x-amz-restore header: 'ongoing-request="true"' while restoring, "false" once readable.
    if info.restore is None:
        return Availability.RESTORE_REQUIRED
    if 'ongoing-request="true"' in info.restore:
        return Availability.RESTORE_IN_PROGRESS
    return Availability.AVAILABLE
