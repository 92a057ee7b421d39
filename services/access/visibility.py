"""Who may see a media item. Not visible must look exactly like not existing."""

from __future__ import annotations

from services.core.auth import Principal
from services.core.media import Media, MediaStatus, Visibility


def can_view(
    media: Media, viewer: Principal | None, *, is_friend: bool = False, is_blocked: bool = False
) -> bool:
    # Deleted media vanishes from every read path, the owner's too; only the trash
    # (deletedMedia) and restoreMedia reach it.
    if media.status is MediaStatus.DELETED:
        return False
    if viewer is not None and (viewer.user_id == media.owner_id or viewer.is_admin):
        return True
    if is_blocked:  # a block hides everything of each from the other, PUBLIC media too
        return False
    # Everyone but the owner only ever sees finished, checked media.
    if media.status is not MediaStatus.COMPLETED:
        return False
    if media.visibility is Visibility.PUBLIC:
        return True
    if media.visibility is Visibility.FRIENDS:
        return viewer is not None and is_friend
    return False
