"""Resumable subscriptions over the real WebSocket API: replay after a disconnect, many API
processes on one Redis, per-user isolation of live and replayed events, expired positions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from infra.aws.resources import Resources
from infra.settings import Settings
from tests.client import WsClient, create_upload, gql
from tests.conftest import isolated_settings
from tests.media_files import jpeg_bytes
from tests.servers import joined, listening, serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(moto_endpoint: str, any_redis: tuple[str, bool]) -> Iterator[Settings]:
    """Every test of this module runs on one Redis, then on a Redis Cluster of three masters."""
    url, cluster = any_redis
    yield from isolated_settings(moto_endpoint, url, redis_cluster=cluster)


EVENTS = "subscription($since: String) { mediaEvents(since: $since) { eventId type media { mediaId } } }"


async def _upload(api: str, token: str) -> str:
    """createUpload publishes a CREATED event for its owner; returns the mediaId."""
    payload = await create_upload(api, token, jpeg_bytes())
    media_id: str = payload["media"]["mediaId"]
    return media_id


async def _event(ws: WsClient, op: str) -> dict[str, Any]:
    message = await ws.receive(timeout=10)
    assert message["type"] == "next" and message["id"] == op, message
    assert "errors" not in message["payload"], message
    event: dict[str, Any] = message["payload"]["data"]["mediaEvents"]
    return event


async def test_a_reconnecting_client_gets_exactly_what_it_missed_then_live_ones(
    api: str, token: Callable[..., str]
) -> None:
    alice = token("alice")
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(EVENTS)
        await joined(api, 1)
        await listening(api, "alice")
        first = await _upload(api, alice)
        seen = await _event(ws, op)
        assert seen["media"]["mediaId"] == first
    missed = [await _upload(api, alice) for _ in range(3)]  # the app is offline meanwhile

    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(EVENTS, {"since": seen["eventId"]})
        replayed = [await _event(ws, op) for _ in range(3)]
        assert [event["media"]["mediaId"] for event in replayed] == missed
        assert all(event["type"] == "CREATED" for event in replayed)
        live = await _upload(api, alice)
        after = await _event(ws, op)
        assert after["media"]["mediaId"] == live
        await ws.expect_nothing(0.5)  # no duplicate at the seam, nothing replayed twice
    ids = [seen["eventId"], *(event["eventId"] for event in replayed), after["eventId"]]
    assert len(set(ids)) == 5


async def test_events_published_during_the_replay_are_neither_lost_nor_repeated(
    api: str, token: Callable[..., str]
) -> None:
    alice = token("alice")
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(EVENTS)
        await joined(api, 1)
        await listening(api, "alice")
        await _upload(api, alice)
        since = (await _event(ws, op))["eventId"]
    missed = [await _upload(api, alice) for _ in range(5)]
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(EVENTS, {"since": since})
        # Uploads race with the subscription's replay: each must arrive exactly once, in order.
        racing = await asyncio.gather(*(_upload(api, alice) for _ in range(5)))
        received = [(await _event(ws, op))["media"]["mediaId"] for _ in range(10)]
        await ws.expect_nothing(0.5)
    assert received[:5] == missed
    assert sorted(received[5:]) == sorted(racing)


async def test_two_api_processes_both_deliver_an_event_published_once(
    api: str, settings: Settings, resources: Resources, token: Callable[..., str]
) -> None:
    alice = token("alice")
    async with serving(settings) as other, WsClient(api, alice) as one, WsClient(other, alice) as two:
        assert other != api
        op_one, op_two = await one.subscribe(EVENTS), await two.subscribe(EVENTS)
        await joined(api, 1)
        await joined(other, 1)
        await listening(api, "alice")
        await listening(other, "alice")
        media_id = await _upload(api, alice)  # published once, by the first process
        got_one, got_two = await _event(one, op_one), await _event(two, op_two)
        assert got_one == got_two
        assert got_one["media"]["mediaId"] == media_id
        await one.expect_nothing(0.3)
        await two.expect_nothing(0.3)


async def test_another_user_never_receives_or_replays_what_is_not_theirs(
    api: str, token: Callable[..., str]
) -> None:
    alice, mallory = token("alice"), token("mallory")
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(EVENTS)
        await joined(api, 1)
        await listening(api, "alice")
        await _upload(api, alice)
        alice_since = (await _event(ws, op))["eventId"]
    for _ in range(2):
        await _upload(api, alice)
    async with WsClient(api, mallory) as spy:
        # Alice's position, used by Mallory, is of another history (each user's has its own
        # epoch): SINCE_EXPIRED, and nothing of Alice's is replayed.
        op = await spy.subscribe(EVENTS, {"since": alice_since})
        message = await spy.receive()
        assert message["id"] == op, message
        assert [error["extensions"]["reason"] for error in message["payload"]["errors"]] == ["SINCE_EXPIRED"]
        assert await spy.receive() == {"id": op, "type": "complete"}
        # Live, Mallory gets her own events only.
        op = await spy.subscribe(EVENTS)
        await spy.expect_nothing(0.3)  # subscribed before publishing
        own = await _upload(api, mallory)
        assert (await _event(spy, op))["media"]["mediaId"] == own
        await _upload(api, alice)
        await spy.expect_nothing(1.0)


async def test_an_expired_or_malformed_since_is_reported(
    settings: Settings, resources: Resources, token: Callable[..., str]
) -> None:
    alice = token("alice")
    async with serving(settings.model_copy(update={"event_stream_maxlen": 2})) as api:
        async with WsClient(api, alice) as ws:
            op = await ws.subscribe(EVENTS)
            await joined(api, 1)
            await listening(api, "alice")
            await _upload(api, alice)
            since = (await _event(ws, op))["eventId"]
        for _ in range(3):  # only the last 2 are kept: the first after `since` is gone
            await _upload(api, alice)
        async with WsClient(api, alice) as ws:
            for bad, reason in ((since, "SINCE_EXPIRED"), ("yesterday", "MALFORMED_SINCE")):
                op = await ws.subscribe(EVENTS, {"since": bad})
                message = await ws.receive()
                assert message["id"] == op and message["payload"]["data"] is None, message
                extensions = [error["extensions"] for error in message["payload"]["errors"]]
                assert extensions == [{"code": "BAD_USER_INPUT", "reason": reason}], message
                assert await ws.receive() == {"id": op, "type": "complete"}
            # The latest kept position still resumes.
            body = await gql(api, "{ myMedia { edges { node { mediaId } } } }", token=alice)
            assert len(body["data"]["myMedia"]["edges"]) == 4


async def test_identical_subscriptions_share_one_execution_and_end_independently(
    api: str, token: Callable[..., str]
) -> None:
    alice, bob = token("alice"), token("bob")
    other_selection = "subscription { mediaEvents { type media { mediaId title } } }"
    async with WsClient(api, alice) as one, WsClient(api, alice) as two, WsClient(api, bob) as three:
        op_one, op_two = await one.subscribe(EVENTS), await two.subscribe(EVENTS)
        op_other = await one.subscribe(other_selection)
        await three.subscribe(EVENTS)
        await joined(api, 4)
        await listening(api, "alice", 2)  # two selections: two executions
        await listening(api, "bob")
        first = await _upload(api, alice)
        # Two operations on one socket: each in order, but in no order between them.
        messages = {message["id"]: message for message in [await one.receive(), await one.receive()]}
        assert set(messages) == {op_one, op_other}
        got_one = messages[op_one]["payload"]["data"]["mediaEvents"]
        got_two = await _event(two, op_two)
        assert got_one == got_two and got_one["media"]["mediaId"] == first
        assert messages[op_other]["payload"]["data"]["mediaEvents"] == {
            "type": "CREATED",
            "media": {"mediaId": first, "title": "A photo"},
        }
        await three.expect_nothing(0.3)  # same document, other user: never shared

        await one.send({"id": op_one, "type": "complete"})  # one member leaves; the rest go on
        second = await _upload(api, alice)
        assert (await _event(two, op_two))["media"]["mediaId"] == second
        assert (await one.receive())["id"] == op_other
        await one.expect_nothing(0.3)


def _fanout_writes(metrics_text: str, how: str) -> float:
    prefix = f'mediagraph_fanout_writes_total{{how="{how}"}} '
    lines = [line for line in metrics_text.splitlines() if line.startswith(prefix)]
    return float(lines[0][len(prefix) :]) if lines else 0.0


async def test_shared_subscribers_are_written_at_once_by_the_real_server(
    api: str, token: Callable[..., str], metrics_url: str
) -> None:
    """Under `mediagraph serve`'s server configuration, one event to a shared group is written to
    every member in the group's pass (the protocol's write-now extension), as /metrics shows."""
    alice = token("alice")
    async with httpx.AsyncClient(base_url=metrics_url) as http:
        before = _fanout_writes((await http.get("/metrics")).text, "now")
        async with WsClient(api, alice) as one, WsClient(api, alice) as two:
            ops = [await one.subscribe(EVENTS), await two.subscribe(EVENTS)]
            await joined(api, 2)
            await listening(api, "alice")  # one shared execution
            media_id = await _upload(api, alice)
            for ws, op in ((one, ops[0]), (two, ops[1])):
                assert (await _event(ws, op))["media"]["mediaId"] == media_id
        after = _fanout_writes((await http.get("/metrics")).text, "now")
    assert after - before == 2
