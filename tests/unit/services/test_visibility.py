"""Who may see a media item (services/access/visibility.py), case by case: the privacy rules every
read path applies. Not visible must look exactly like not existing."""

from __future__ import annotations

import dataclasses

import pytest

from services.access.visibility import can_view
from services.core.auth import Principal
from services.core.media import Media, MediaStatus, Visibility
from tests.fakes import make_media

OWNER = Principal("owner")
STRANGER = Principal("stranger")
ADMIN = Principal("root", roles=frozenset({"admin"}))


def media(status: MediaStatus = MediaStatus.COMPLETED, visibility: Visibility = Visibility.PUBLIC) -> Media:
    return dataclasses.replace(make_media(b"x", owner_id="owner"), status=status, visibility=visibility)


@pytest.mark.parametrize("status", list(MediaStatus))
@pytest.mark.parametrize("visibility", list(Visibility))
def test_the_owner_and_admins_see_everything_but_deleted_media(
    status: MediaStatus, visibility: Visibility
) -> None:
    item = media(status, visibility)
    expected = status is not MediaStatus.DELETED
    assert can_view(item, OWNER) is expected
    assert can_view(item, ADMIN) is expected
    assert can_view(item, OWNER, is_blocked=True) is expected  # a block never hides one's own


@pytest.mark.parametrize("status", [s for s in MediaStatus if s is not MediaStatus.COMPLETED])
def test_others_see_only_completed_media(status: MediaStatus) -> None:
    item = media(status, Visibility.PUBLIC)
    assert not can_view(item, STRANGER)
    assert not can_view(item, None)
    assert not can_view(item, STRANGER, is_friend=True)


def test_public_media_is_for_everyone_signed_in_or_not() -> None:
    assert can_view(media(), STRANGER)
    assert can_view(media(), None)


def test_friends_media_is_for_signed_in_friends_only() -> None:
    item = media(visibility=Visibility.FRIENDS)
    assert can_view(item, STRANGER, is_friend=True)
    assert not can_view(item, STRANGER)
    assert not can_view(item, None, is_friend=True)  # anonymous is nobody's friend


def test_private_media_is_for_the_owner_only() -> None:
    item = media(visibility=Visibility.PRIVATE)
    assert not can_view(item, STRANGER, is_friend=True)
    assert not can_view(item, None)


@pytest.mark.parametrize("visibility", list(Visibility))
def test_a_block_hides_everything_even_public_media_and_friendship(visibility: Visibility) -> None:
    assert not can_view(media(visibility=visibility), STRANGER, is_friend=True, is_blocked=True)
