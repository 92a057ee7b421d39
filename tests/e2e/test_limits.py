"""Rate limits through the public API: a limit reached, answered with retryAfter and recovered;
a client address believed only from a trusted proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from infra.settings import Settings
from tests.client import CREATE_UPLOAD, create_upload, error_codes, gql, upload_input
from tests.conftest import isolated_settings
from tests.media_files import jpeg_bytes

pytestmark = pytest.mark.e2e

MINE = "{ myMedia { edges { node { mediaId } } } }"
USER_BURST = 3
IP_BURST = 6


@pytest.fixture
def settings(moto_endpoint: str, any_redis: tuple[str, bool]) -> Iterator[Settings]:
    """Every test of this module runs on one Redis, then on a Redis Cluster of three masters."""
    url, cluster = any_redis
    yield from isolated_settings(
        moto_endpoint,
        url,
        redis_cluster=cluster,
        rate_limit_user_burst=USER_BURST,
        # One token every 5 s: a loaded machine does not refill the bucket between requests.
        rate_limit_user_per_minute=12,
        rate_limit_ip_burst=IP_BURST,
        rate_limit_ip_per_minute=6,
        trusted_proxies="127.0.0.1",  # the tests' requests come "through a proxy" on localhost
    )


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_user_rate_limit_is_reached_then_recovers(api: str, token: Callable[..., str]) -> None:
    alice = token("alice")
    for _ in range(USER_BURST):
        body = await gql(api, MINE, token=alice, headers=via("198.51.100.1"))
        assert "errors" not in body, body
    limited = await gql(api, MINE, token=alice, headers=via("198.51.100.2"))  # another address: same user
    assert error_codes(limited) == ["RATE_LIMITED"], limited
    retry_after = limited["errors"][0]["extensions"]["retryAfter"]
    assert 1 <= retry_after <= 5  # whole seconds, rounded up; less if the bucket refilled a little
    # Mutations draw on the same bucket.
    refused = await gql(api, CREATE_UPLOAD, {"input": upload_input(jpeg_bytes(100))}, token=alice)
    assert error_codes(refused) == ["RATE_LIMITED"], refused

    await asyncio.sleep(retry_after)
    body = await gql(api, MINE, token=alice, headers=via("198.51.100.4"))
    assert "errors" not in body, body
    # Another user was never affected.
    assert "errors" not in await gql(api, MINE, token=token("bob"), headers=via("198.51.100.5"))


async def test_mutations_are_rate_limited(api: str, token: Callable[..., str]) -> None:
    alice = token("alice")
    data = jpeg_bytes(1000)
    for _ in range(USER_BURST - 1):
        await create_upload(api, alice, data)
    abort = "mutation($id: ID!) { abortUpload(mediaId: $id) }"
    body = await gql(api, abort, {"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, token=alice)
    assert error_codes(body) == ["NOT_FOUND"]  # charged, then answered
    body = await gql(api, abort, {"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, token=alice)
    assert error_codes(body) == ["RATE_LIMITED"]


async def test_client_address_limit_believes_only_trusted_proxies(
    api: str, token: Callable[..., str]
) -> None:
    # Many users behind one address share its bucket (IP_BURST requests, then refused) ...
    for n in range(IP_BURST):
        body = await gql(api, MINE, token=token(f"user{n}"), headers=via("203.0.113.7"))
        assert "errors" not in body, body
    limited = await gql(api, MINE, token=token("late"), headers=via("203.0.113.7"))
    assert error_codes(limited) == ["RATE_LIMITED"]
    # 6 per minute: one token every 10 s, less what refilled while the burst was being spent
    # (not a timing assert: any wait in (0, 10] is right, a slow machine refills a little more).
    assert 1 <= limited["errors"][0]["extensions"]["retryAfter"] <= 10
    # ... anonymous callers too ...
    assert error_codes(await gql(api, MINE, headers=via("203.0.113.7"))) == ["RATE_LIMITED"]
    # ... while another address has its own. A spoofed entry left of the proxy's is ignored.
    body = await gql(api, MINE, token=token("late"), headers=via("203.0.113.7, 203.0.113.8"))
    assert "errors" not in body, body
