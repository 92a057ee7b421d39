"""Redis restarted under live subscriptions: the API keeps serving, tells subscribers to resume,
and a resumed subscription gets what was published after the restart. A private redis-server
on a free port: the shared one is never restarted."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from infra.settings import Settings
from tests.client import WsClient, create_upload, gql
from tests.conftest import make_settings
from tests.media_files import jpeg_bytes
from tests.redis_process import RedisProcess

pytestmark = pytest.mark.e2e

EVENTS = "subscription($since: String) { mediaEvents(since: $since) { eventId type media { mediaId } } }"


@pytest.fixture
def settings(moto_endpoint: str, own_redis: RedisProcess) -> Settings:
    return make_settings(moto_endpoint, own_redis.url)


async def test_subscriptions_survive_a_redis_restart(
    api: str, token: Callable[..., str], own_redis: RedisProcess
) -> None:
    alice = token("alice")
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(EVENTS)
        await ws.expect_nothing(0.3)  # subscribed before publishing
        await create_upload(api, alice, jpeg_bytes())
        first = await ws.receive()
        assert first["type"] == "next" and "errors" not in first["payload"], first
        last_event = first["payload"]["data"]["mediaEvents"]["eventId"]

        own_redis.stop()
        own_redis.start()

        # The subscription is told to resume (it may have missed events), then completes.
        interrupted = await ws.receive()
        assert interrupted["id"] == op, interrupted
        assert interrupted["type"] == "next", interrupted
        [error] = interrupted["payload"]["errors"]
        assert error["extensions"]["reason"] == "RESUBSCRIBE", interrupted
        assert "Traceback" not in str(interrupted)
        assert await ws.receive() == {"id": op, "type": "complete"}

    # The process is alive and serves HTTP.
    assert (await gql(api, "{ __typename }"))["data"] == {"__typename": "Query"}
    # The restarted Redis lost the history (no persistence): resume live, then a new event arrives.
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(EVENTS)
        await ws.expect_nothing(0.3)
        media_id = (await create_upload(api, alice, jpeg_bytes(2000)))["media"]["mediaId"]
        message = await ws.receive()
        assert message["type"] == "next" and message["id"] == op, message
        assert message["payload"]["data"]["mediaEvents"]["media"]["mediaId"] == media_id
        assert message["payload"]["data"]["mediaEvents"]["eventId"] != last_event
