"""Friends and blocks (services/community/social.py) on the in-memory store, which the port
contract (tests/integration/test_port_contracts.py) holds to DynamoSocialStore's behaviour."""

from __future__ import annotations

import pytest

from services.community.social import SocialService
from services.core.auth import Principal
from services.core.errors import BadUserInput, NotFound, Unauthenticated
from services.core.pagination import CursorCodec
from services.core.ports import FriendshipState
from tests.fakes import InMemorySocialStore

ALICE, BOB, CAROL = Principal("alice"), Principal("bob"), Principal("carol")


@pytest.fixture
async def social() -> SocialService:
    service = SocialService(InMemorySocialStore(), CursorCodec(b"k" * 32))
    for user in (ALICE, BOB, CAROL):
        await service.touch(user)
    return service


async def test_a_request_then_an_accept_makes_friends(social: SocialService) -> None:
    assert await social.request(ALICE, "bob") is FriendshipState.REQUESTED
    assert await social.request(ALICE, "bob") is FriendshipState.REQUESTED  # asking twice changes nothing
    assert await social.state(BOB, "alice") is FriendshipState.INCOMING
    assert (await social.requests(BOB, first=10, after=None)).user_ids == ["alice"]
    assert await social.accept(BOB, "alice") is FriendshipState.FRIENDS
    assert await social.accept(BOB, "alice") is FriendshipState.FRIENDS  # idempotent
    assert (await social.friends(ALICE, first=10, after=None)).user_ids == ["bob"]
    assert (await social.requests(BOB, first=10, after=None)).user_ids == []


async def test_asking_someone_who_asked_you_makes_friends_at_once(social: SocialService) -> None:
    await social.request(BOB, "alice")
    assert await social.request(ALICE, "bob") is FriendshipState.FRIENDS


async def test_accepting_without_a_request_is_not_found(social: SocialService) -> None:
    with pytest.raises(NotFound):
        await social.accept(ALICE, "bob")
    await social.request(ALICE, "bob")
    with pytest.raises(NotFound):  # one's own request is not accepted by oneself
        await social.accept(ALICE, "bob")


async def test_remove_ends_a_friendship_or_a_request(social: SocialService) -> None:
    await social.request(ALICE, "bob")
    await social.accept(BOB, "alice")
    assert await social.remove(BOB, "alice") is True
    assert await social.state(ALICE, "bob") is FriendshipState.NONE
    await social.request(ALICE, "carol")
    await social.remove(ALICE, "carol")
    assert await social.state(CAROL, "alice") is FriendshipState.NONE


async def test_a_block_ends_the_friendship_and_looks_like_absence(social: SocialService) -> None:
    await social.request(ALICE, "bob")
    await social.accept(BOB, "alice")
    await social.block(BOB, "alice")
    assert await social.state(ALICE, "bob") is FriendshipState.BLOCKED
    assert (await social.friends(ALICE, first=10, after=None)).user_ids == []
    with pytest.raises(NotFound):  # the blocked user cannot ask again: the blocker "does not exist"
        await social.request(ALICE, "bob")
    await social.remove(ALICE, "bob")  # unfriending does not lift a block
    assert await social.state(BOB, "alice") is FriendshipState.BLOCKED


async def test_unknown_users_oneself_and_bad_ids_are_refused(social: SocialService) -> None:
    with pytest.raises(NotFound):
        await social.request(ALICE, "nobody")
    with pytest.raises(BadUserInput):
        await social.request(ALICE, "alice")
    with pytest.raises(BadUserInput):
        await social.request(ALICE, "")
    with pytest.raises(BadUserInput):
        await social.request(ALICE, "x" * 129)
    with pytest.raises(Unauthenticated):
        await social.request(None, "bob")


async def test_friends_page_with_cursors_scoped_to_the_caller(social: SocialService) -> None:
    for other in (BOB, CAROL):
        await social.request(ALICE, other.user_id)
        await social.accept(other, "alice")
    first = await social.friends(ALICE, first=1, after=None)
    assert first.user_ids == ["bob"] and first.has_next_page
    rest = await social.friends(ALICE, first=1, after=first.end_cursor)
    assert rest.user_ids == ["carol"] and not rest.has_next_page
    with pytest.raises(BadUserInput):  # Alice's cursor is no cursor of Bob's
        await social.friends(BOB, first=1, after=first.end_cursor)


async def test_a_failing_directory_does_not_refuse_the_call() -> None:
    class Down(InMemorySocialStore):
        async def touch_user(self, user_id: str) -> None:
            raise ConnectionError("directory down")

    store = Down()
    service = SocialService(store, CursorCodec(b"k" * 32))
    await service.touch(ALICE)  # logged, not raised
    assert not await store.user_exists("alice")
