"""The worker against moto's S3 → SQS notifications and the real Redis."""

from __future__ import annotations

import dataclasses
import json

import pytest

from infra.aws.resources import Resources
from infra.aws.sqs_worker import SqsWorker
from infra.roots.runtime import Runtime
from services.core.events import MediaEvent, MediaEventType
from services.core.media import MediaStatus
from tests.media_files import jpeg_bytes
from tests.runtime_uploads import upload_directly
from tests.servers import eventually
from tests.streams import stream_events

pytestmark = pytest.mark.integration


async def _events(runtime: Runtime, user: str) -> list[MediaEvent]:
    return await stream_events(runtime.redis, runtime.bus.stream_key(user))


async def test_the_same_s3_event_twice_changes_and_announces_once(
    runtime: Runtime, resources: Resources, worker: SqsWorker
) -> None:
    media_id = await upload_directly(runtime, jpeg_bytes())

    async def completed() -> bool:
        media = await runtime.repo.get(media_id)
        return media is not None and media.status is MediaStatus.COMPLETED

    await eventually(completed)
    first = await runtime.repo.get(media_id)
    # Replay the notification S3 already delivered (S3 is at-least-once).
    record = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": runtime.settings.bucket},
                    "object": {"key": f"uploads%2F{media_id}", "size": 1},
                },
            }
        ]
    }
    await runtime.clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps(record))

    async def drained() -> bool:
        attributes = await runtime.clients.sqs.get_queue_attributes(
            QueueUrl=resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        values = attributes["Attributes"]
        return bool(
            values["ApproximateNumberOfMessages"] == values["ApproximateNumberOfMessagesNotVisible"] == "0"
        )

    await eventually(drained)
    again = await runtime.repo.get(media_id)
    assert again == first  # no second write: same version, same timestamps
    types = [event.type for event in await _events(runtime, "alice")]
    assert types == [MediaEventType.CREATED, MediaEventType.PROCESSING, MediaEventType.COMPLETED]


async def test_poison_message_lands_in_the_dlq_and_the_worker_goes_on(
    runtime: Runtime, resources: Resources, worker: SqsWorker
) -> None:
    sqs = runtime.clients.sqs
    await sqs.send_message(QueueUrl=resources.queue_url, MessageBody="this is not an S3 event")

    async def in_dlq() -> bool:
        attributes = await sqs.get_queue_attributes(
            QueueUrl=resources.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return bool(attributes["Attributes"]["ApproximateNumberOfMessages"] == "1")

    await eventually(in_dlq, timeout=30)
    # The worker still processes good uploads afterwards.
    media_id = await upload_directly(runtime, jpeg_bytes())

    async def completed() -> bool:
        media = await runtime.repo.get(media_id)
        return media is not None and media.status is MediaStatus.COMPLETED

    await eventually(completed)
    message = await sqs.receive_message(QueueUrl=resources.dlq_url, WaitTimeSeconds=1)
    assert message["Messages"][0]["Body"] == "this is not an S3 event"


async def test_an_event_for_an_unknown_upload_is_acknowledged_not_dead_lettered(
    runtime: Runtime, resources: Resources, worker: SqsWorker
) -> None:
    """A well-formed event for a key with no record (swept, or never ours) is not an error:
    retrying could never help, so it is deleted rather than filling the DLQ."""
    media_id = await upload_directly(runtime, jpeg_bytes())
    await eventually(lambda: _is_completed(runtime, media_id))
    body = json.dumps(
        {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "uploads/ZZZZ"}}}]}
    )
    await runtime.clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body)

    async def nothing_left_anywhere() -> bool:
        # Until deleted, the message is visible or in flight in the queue, or (dead-lettered
        # after two receives) in the DLQ: all counts at zero means the worker deleted it.
        counts = set()
        for url in (resources.queue_url, resources.dlq_url):
            attributes = await runtime.clients.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )
            counts |= set(attributes["Attributes"].values())
        return counts == {"0"}

    await eventually(nothing_left_anywhere)


async def _is_completed(runtime: Runtime, media_id: str) -> bool:
    media = await runtime.repo.get(media_id)
    return media is not None and media.status is MediaStatus.COMPLETED


async def test_resources_are_idempotent(runtime: Runtime, resources: Resources) -> None:
    from infra.aws.resources import ensure_resources

    again = await ensure_resources(runtime.clients, runtime.settings.aws)
    assert again == resources
    notification = await runtime.clients.s3.get_bucket_notification_configuration(
        Bucket=runtime.settings.bucket
    )
    (queue,) = notification["QueueConfigurations"]
    assert queue["QueueArn"] == resources.queue_arn
    assert queue["Filter"]["Key"]["FilterRules"] == [{"Name": "Prefix", "Value": "uploads/"}] or queue[
        "Filter"
    ]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "uploads/"}]
    attributes = await runtime.clients.sqs.get_queue_attributes(
        QueueUrl=resources.queue_url, AttributeNames=["RedrivePolicy"]
    )
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == resources.dlq_arn
    assert int(redrive["maxReceiveCount"]) == runtime.settings.max_receive_count


async def test_a_table_from_an_older_release_gets_the_new_index(runtime: Runtime) -> None:
    from infra.aws.resources import ensure_resources, table_definition

    dynamodb, settings = runtime.clients.dynamodb, runtime.settings
    old = table_definition(f"{settings.table}-old")
    old["GlobalSecondaryIndexes"] = [i for i in old["GlobalSecondaryIndexes"] if i["IndexName"] != "gsi4"]
    old["AttributeDefinitions"] = [
        a for a in old["AttributeDefinitions"] if a["AttributeName"] not in ("gsi4pk", "gsi4sk")
    ]
    await dynamodb.create_table(**old)

    await ensure_resources(runtime.clients, dataclasses.replace(settings.aws, table=old["TableName"]))

    table = (await dynamodb.describe_table(TableName=old["TableName"]))["Table"]
    assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == {
        "gsi1",
        "gsi2",
        "gsi3",
        "gsi4",
    }
