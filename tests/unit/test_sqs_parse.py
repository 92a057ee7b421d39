"""parse_notices: S3 event notifications as SQS delivers them, from moto and from real S3."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.aws.sqs_worker import PoisonMessage, parse_notices
from services.ingest.processing import ObjectCreated


def record(
    key: str = "uploads%2Fabc",
    *,
    event: str = "ObjectCreated:Put",
    size: int | None = 1234,
    sequencer: str | None = None,
    event_time: str | None = "2026-01-02T03:04:05.678Z",
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "eTag": "0123456789abcdef"}
    if size is not None:
        obj["size"] = size
    if sequencer is not None:
        obj["sequencer"] = sequencer
    entry: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": event,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "mediagraph-media"}, "object": obj},
    }
    if event_time is not None:
        entry["eventTime"] = event_time
    return entry


def body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def sns(message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "c0ffee",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:s3-events",
            "Subject": "Amazon S3 Notification",
            "Message": message,
        }
    )


TEST_EVENT = json.dumps(
    {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-01-02T03:04:05.678Z",
        "Bucket": "mediagraph-media",
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        pytest.param("uploads%2Fabc", "uploads/abc", id="slash"),
        pytest.param("uploads/my+holiday+photo.jpg", "uploads/my holiday photo.jpg", id="plus-is-space"),
        pytest.param("uploads/a%2Bb", "uploads/a+b", id="encoded-plus"),
        pytest.param("uploads/caf%C3%A9", "uploads/caf\u00e9", id="utf-8"),
        pytest.param("uploads/01JABC", "uploads/01JABC", id="plain"),
    ],
)
def test_keys_are_url_decoded(raw: str, decoded: str) -> None:
    (notice,) = parse_notices(body(record(raw)))
    assert notice.key == decoded


def test_a_notice_carries_size_and_time() -> None:
    assert parse_notices(body(record())) == [
        ObjectCreated(
            key="uploads/abc",
            size=1234,
            event_time=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            sequencer=None,
        )
    ]


def test_the_s3_test_event_yields_nothing() -> None:
    assert parse_notices(TEST_EVENT) == []
    assert parse_notices(sns(TEST_EVENT)) == []


def test_an_sns_wrapped_notification_is_unwrapped() -> None:
    notices = parse_notices(sns(body(record("uploads%2Fm1", sequencer="0055AED6DCD90281E5"))))
    assert [(n.key, n.sequencer) for n in notices] == [("uploads/m1", "0055AED6DCD90281E5")]


def test_records_other_than_object_created_are_skipped() -> None:
    notices = parse_notices(
        body(
            record("uploads%2Fgone", event="ObjectRemoved:Delete"),
            record("uploads%2Fkept", event="ObjectCreated:CompleteMultipartUpload"),
            record("uploads%2Frestored", event="ObjectRestore:Completed"),
            record("uploads%2Fcopy", event="ObjectCreated:Copy"),
        )
    )
    assert [n.key for n in notices] == ["uploads/kept", "uploads/copy"]


def test_a_message_of_only_other_records_yields_nothing() -> None:
    assert parse_notices(body(record(event="ObjectRemoved:Delete"))) == []
    assert parse_notices(body()) == []


def test_records_keep_their_order() -> None:
    notices = parse_notices(body(*(record(f"uploads%2F{i}") for i in range(5))))
    assert [n.key for n in notices] == [f"uploads/{i}" for i in range(5)]


def test_moto_records_without_sequencer_size_or_time_are_tolerated() -> None:
    (notice,) = parse_notices(body(record(size=None, event_time=None)))
    assert notice == ObjectCreated(key="uploads/abc", size=None, event_time=None, sequencer=None)


def test_the_sequencer_is_kept_when_present() -> None:
    (notice,) = parse_notices(body(record(sequencer="0A1B2C3D4E5F678901")))
    assert notice.sequencer == "0A1B2C3D4E5F678901"


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param("", id="empty"),
        pytest.param("not json", id="not-json"),
        pytest.param("null", id="null"),
        pytest.param("42", id="number"),
        pytest.param("[]", id="list"),
        pytest.param("{}", id="empty-object"),
        pytest.param('{"Records": "nope"}', id="records-not-a-list"),
        pytest.param('{"Records": [1]}', id="record-not-an-object"),
        pytest.param(body({"eventName": "ObjectCreated:Put"}), id="record-without-s3"),
        pytest.param(body({"eventName": "ObjectCreated:Put", "s3": {"object": {}}}), id="object-without-key"),
        pytest.param(
            body({"eventName": "ObjectCreated:Put", "s3": {"object": {"key": None}}}), id="key-null"
        ),
        pytest.param(body(record(event_time="yesterday")), id="bad-time"),
        pytest.param('{"Type": "Notification"}', id="sns-without-message"),
        pytest.param(sns("garbage"), id="sns-with-garbage"),
        pytest.param(sns("[1, 2]"), id="sns-with-a-list"),
    ],
)
def test_garbage_is_a_poison_message(garbage: str) -> None:
    with pytest.raises(PoisonMessage):
        parse_notices(garbage)
