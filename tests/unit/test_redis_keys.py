"""The key schema (infra/redis/keys.py): the keys of one script or transaction share a hash slot,
keys of different users, scopes and families spread over the cluster."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from infra.redis.keys import VIEW_BUCKETS, RedisKeys
from infra.settings import Settings

KEYS = RedisKeys("mg:")


def slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize("user", ["alice", "01HZX3", "odd}user{name", ""])
def test_a_users_event_keys_and_channel_share_a_slot(user: str) -> None:
    # _PUBLISH touches the marker, the stream, the trim marker and the epoch, and SPUBLISHes on
    # the channel.
    slots = {
        slot(KEYS.events_channel(user)),
        slot(KEYS.event_stream(user)),
        slot(KEYS.event_trimmed(user)),
        slot(KEYS.event_epoch(user)),
        slot(KEYS.event_published(user, "01MEDIA:3:COMPLETED")),
    }
    assert len(slots) == 1


def test_the_channel_names_its_user() -> None:
    for user in ["alice", "odd}user{name", "a:b"]:
        assert KEYS.user_of_channel(KEYS.events_channel(user)) == user
    assert KEYS.user_of_channel(KEYS.bus_control()) is None
    assert KEYS.user_of_channel("other:{u:alice}:events") is None


def test_a_page_and_its_generation_share_a_slot() -> None:
    # The page-cache script reads the generation, then the page it names.
    for scope in ["owner:alice", "tag:cats", "public:PUBLIC"]:
        assert slot(KEYS.page_prefix(scope) + "7:abc") == slot(KEYS.page_generation(scope))


def test_a_url_and_its_generation_share_a_slot() -> None:
    assert slot(KEYS.url("alice", "3", "derived/x.jpg")) == slot(KEYS.url_generation("alice"))


def test_the_keys_of_a_view_share_the_slot_of_its_bucket() -> None:
    for media_id in [f"01MEDIA{n}" for n in range(50)]:
        bucket = KEYS.view_bucket(media_id)
        assert 0 <= bucket < VIEW_BUCKETS
        expected = slot(KEYS.views_pending(bucket))
        assert slot(KEYS.viewed(media_id, "bob")) == expected
        assert slot(KEYS.view_log(media_id)) == expected
        assert slot(KEYS.views_flushing(bucket)) == expected  # RENAME needs one slot


def test_unrelated_keys_spread_over_the_slots() -> None:
    users = {slot(KEYS.event_stream(f"user{n}")) for n in range(100)}
    buckets = {slot(KEYS.views_pending(bucket)) for bucket in range(VIEW_BUCKETS)}
    families = {slot(KEYS.session_family(f"family{n}")) for n in range(100)}
    # Three masters each own a third of the slots: every group reaches all three.
    for slots in (users, buckets, families):
        assert {s * 3 // 16384 for s in slots} == {0, 1, 2}


def test_a_prefix_with_a_brace_is_refused() -> None:
    with pytest.raises(ValueError, match="hash tags"):
        RedisKeys("mg{x}:")
    with pytest.raises(ValueError, match="redis_prefix"):
        Settings(_env_file=None, jwt_secret="x" * 40, redis_prefix="{mg}:")
