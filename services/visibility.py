"""Who may see a media item. Not visible must look exactly like not existing."""

from __future__ import annotations

from services.auth import Principal
from services.media import Media, MediaStatus, Visibility


def can_view(media: Media, viewer: Principal | None, *, is_friend: bool = False) -> bool:
    if viewer is not None and (viewer.user_id == media.owner_id or viewer.is_admin):
        return media.status is not MediaStatus.DELETED or viewer.user_id == media.owner_id
    # Everyone but the owner only ever sees finished, checked media.
    if media.status is not MediaStatus.COMPLETED:
        return False
    if media.visibility is Visibility.PUBLIC:
        return True
    if media.visibility is Visibility.FRIENDS:
        return viewer is not None and is_friend
    return False
