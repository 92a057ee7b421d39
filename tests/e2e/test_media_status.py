"""mediaStatus over the real WebSocket API and the real pipeline: every state of one media, live,
then the end; resumption with `since`; nothing for media the viewer may not see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.aws.resources import Resources
from infra.aws.sqs_worker import SqsWorker
from infra.settings import Settings
from tests.client import WsClient, create_upload, put_upload
from tests.media_files import EICAR, corrupt_jpeg, photo
from tests.servers import serving

pytestmark = pytest.mark.e2e

STATUS = """subscription($id: ID!, $since: String) {
  mediaStatus(id: $id, since: $since) { eventId type media { mediaId status } }
}"""


async def _states(ws: WsClient, op: str) -> list[dict[str, Any]]:
    """Every event of the operation until its `complete`."""
    events: list[dict[str, Any]] = []
    while True:
        message = await ws.receive(timeout=30)
        assert message["id"] == op, message
        if message["type"] == "complete":
            return events
        assert message["type"] == "next" and "errors" not in message["payload"], message
        events.append(message["payload"]["data"]["mediaStatus"])


async def _error(ws: WsClient, op: str) -> dict[str, Any]:
    message = await ws.receive()
    assert message["id"] == op and message["payload"]["data"] is None, message
    assert await ws.receive() == {"id": op, "type": "complete"}
    [error] = message["payload"]["errors"]
    return dict(error)


async def test_every_state_of_one_upload_arrives_live_then_the_subscription_ends(
    api: str, worker: SqsWorker, token: Callable[..., str]
) -> None:
    alice = token("alice")
    data = photo()
    payload = await create_upload(api, alice, data)
    media_id = payload["media"]["mediaId"]
    other = await create_upload(api, alice, photo(seed=2))  # events of another media: not shown
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(STATUS, {"id": payload["media"]["id"]})
        first = await ws.receive()
        assert first["payload"]["data"]["mediaStatus"]["type"] == "CREATED"
        assert first["payload"]["data"]["mediaStatus"]["media"] == {"mediaId": media_id, "status": "PENDING"}
        assert await put_upload(other["upload"], photo(seed=2)) == 200
        assert await put_upload(payload["upload"], data) == 200
        later = await _states(ws, op)
    assert [(event["type"], event["media"]["status"]) for event in later] == [
        ("PROCESSING", "PROCESSING"),
        ("COMPLETED", "COMPLETED"),
    ]
    assert {event["media"]["mediaId"] for event in later} == {media_id}
    created = first["payload"]["data"]["mediaStatus"]

    async with WsClient(api, alice) as ws:
        # Resumed after the first event: the rest, exactly once, then the end.
        op = await ws.subscribe(STATUS, {"id": media_id, "since": created["eventId"]})
        assert await _states(ws, op) == later
        # Resumed after the last: nothing more will come, so it ends at once.
        op = await ws.subscribe(STATUS, {"id": media_id, "since": later[-1]["eventId"]})
        assert await _states(ws, op) == []
        # A fresh subscription to finished media: its state, under the id it was announced with.
        op = await ws.subscribe(STATUS, {"id": media_id})
        assert await _states(ws, op) == [later[-1]]


@pytest.mark.parametrize(("data", "status"), [(EICAR, "QUARANTINED"), (corrupt_jpeg(), "REJECTED")])
async def test_a_refused_upload_ends_with_its_refusal(
    api: str, worker: SqsWorker, token: Callable[..., str], data: bytes, status: str
) -> None:
    alice = token("alice")
    payload = await create_upload(api, alice, data)
    async with WsClient(api, alice) as ws:
        op = await ws.subscribe(STATUS, {"id": payload["media"]["id"]})
        assert (await ws.receive())["payload"]["data"]["mediaStatus"]["type"] == "CREATED"
        assert await put_upload(payload["upload"], data) == 200
        states = await _states(ws, op)
    assert [event["type"] for event in states] == ["PROCESSING", status]
    assert states[-1]["media"]["status"] == status


async def test_media_the_viewer_may_not_see_is_not_found_like_missing_media(
    api: str, token: Callable[..., str]
) -> None:
    alice, bob = token("alice"), token("bob")
    payload = await create_upload(api, alice, photo())
    async with WsClient(api, bob) as ws:
        hidden = await _error(ws, await ws.subscribe(STATUS, {"id": payload["media"]["id"]}))
        missing = await _error(ws, await ws.subscribe(STATUS, {"id": "01J0000000000000000000000Z"}))
        # A `since` is checked only after visibility: no hint that the id exists either.
        with_since = await _error(
            ws, await ws.subscribe(STATUS, {"id": payload["media"]["id"], "since": "1-0"})
        )
    assert hidden["extensions"]["code"] == "NOT_FOUND"
    assert {k: v for k, v in hidden.items() if k != "locations"} == {
        k: v for k, v in missing.items() if k != "locations"
    }
    assert with_since["extensions"]["code"] == "NOT_FOUND"


async def test_an_expired_or_malformed_since_is_reported_as_for_media_events(
    settings: Settings, resources: Resources, token: Callable[..., str]
) -> None:
    alice = token("alice")
    async with serving(settings.model_copy(update={"event_stream_maxlen": 2})) as api:
        payload = await create_upload(api, alice, photo())
        async with WsClient(api, alice) as ws:
            op = await ws.subscribe(STATUS, {"id": payload["media"]["id"]})
            since = (await ws.receive())["payload"]["data"]["mediaStatus"]["eventId"]
            await ws.send({"id": op, "type": "complete"})
        for seed in range(3):  # only the last 2 events are kept: the first after `since` is gone
            await create_upload(api, alice, photo(seed=seed + 10))
        async with WsClient(api, alice) as ws:
            for bad, reason in ((since, "SINCE_EXPIRED"), ("yesterday", "MALFORMED_SINCE")):
                error = await _error(
                    ws, await ws.subscribe(STATUS, {"id": payload["media"]["id"], "since": bad})
                )
                assert error["extensions"] == {"code": "BAD_USER_INPUT", "reason": reason}
