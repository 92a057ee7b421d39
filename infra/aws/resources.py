"""Create, or check and bring in line, the AWS resources the service needs. Idempotent: the
same code runs against moto for `make dev` and tests, and against AWS (`mediagraph
init-resources`). `infra/aws/template.yaml` must describe the same shapes (a test compares)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from infra.aws.clients import AwsClients
from infra.aws.dynamo_keys import INDEXES
from infra.settings import AwsConfig

log = logging.getLogger("mediagraph.resources")


@dataclass(frozen=True, slots=True)
class Resources:
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str


def table_definition(table: str) -> dict[str, Any]:
    names = {"pk", "sk", *(name for pair in INDEXES.values() for name in pair)}
    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in sorted(names)],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, (pk, sk) in INDEXES.items()
        ],
    }


def cors_rules(aws: AwsConfig) -> list[dict[str, Any]]:
    origins = list(aws.cors_origins) or ["*"]
    return [
        {
            "AllowedMethods": ["PUT", "GET", "HEAD"],
            "AllowedOrigins": origins,
            "AllowedHeaders": ["content-type", "x-amz-checksum-sha256", "if-none-match"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3600,
        }
    ]


def lifecycle_rules(aws: AwsConfig) -> list[dict[str, Any]]:
    # Backstop for the sweeper: parts of a multipart upload nobody completed or aborted are
    # billed storage until S3 drops them. The sweeper aborts with the PENDING record's expiry.
    days = max(1, -(-aws.pending_ttl_s // 86400))
    return [
        {
            "ID": "abort-incomplete-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": aws.upload_prefix},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
        },
        # Originals are read rarely once old: Glacier Instant Retrieval still serves a GET in
        # milliseconds, so URLs keep working (docs/retention.md).
        {
            "ID": "uploads-to-glacier-ir",
            "Status": "Enabled",
            "Filter": {"Prefix": aws.upload_prefix},
            "Transitions": [{"Days": aws.archive_after_days, "StorageClass": "GLACIER_IR"}],
        },
        # Under versioning a delete or overwrite keeps the old bytes as a noncurrent version.
        {
            "ID": "expire-noncurrent-versions",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": aws.noncurrent_version_days},
        },
    ]


async def ensure_resources(clients: AwsClients, aws: AwsConfig) -> Resources:
    await _ensure_table(clients.dynamodb, aws)
    dlq_url, dlq_arn = await _ensure_queue(clients.sqs, aws.dlq, {})
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": aws.max_receive_count})
    queue_url, queue_arn = await _ensure_queue(
        clients.sqs,
        aws.queue,
        {
            "RedrivePolicy": redrive,
            "VisibilityTimeout": str(aws.queue_visibility_timeout_s),
            "MessageRetentionPeriod": str(4 * 24 * 3600),
        },
    )
    await clients.sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"Policy": json.dumps(_queue_policy(queue_arn, aws.bucket))}
    )
    await _ensure_bucket(clients.s3, aws, queue_arn)
    return Resources(queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url, dlq_arn=dlq_arn)


def _queue_policy(queue_arn: str, bucket: str) -> dict[str, Any]:
    # Least privilege: only S3, and only for our bucket, may send to the queue.
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "s3-notifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }


async def _ensure_table(client: Any, aws: AwsConfig) -> None:
    try:
        await client.describe_table(TableName=aws.table)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        log.info("creating table", extra={"table": aws.table})
        await client.create_table(**table_definition(aws.table))
        waiter = client.get_waiter("table_exists")
        await waiter.wait(TableName=aws.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    await _ensure_indexes(client, aws.table)
    ttl = await client.describe_time_to_live(TableName=aws.table)
    if ttl["TimeToLiveDescription"].get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        await client.update_time_to_live(
            TableName=aws.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
        )


async def _ensure_indexes(client: Any, table: str) -> None:
    """Add GSIs a newer release needs (gsi4: instant re-upload) to a table made by an older one.
    DynamoDB builds one new index per UpdateTable; until it is ACTIVE, lookups just find nothing."""
    description = (await client.describe_table(TableName=table))["Table"]
    existing = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
    definition = table_definition(table)
    for index in definition["GlobalSecondaryIndexes"]:
        if index["IndexName"] in existing:
            continue
        log.info("adding index", extra={"table": table, "index": index["IndexName"]})
        names = {key["AttributeName"] for key in index["KeySchema"]}
        await client.update_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in sorted(names)],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        return  # one index per call; the next start adds the next


async def _ensure_queue(client: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    try:
        url = (await client.get_queue_url(QueueName=name))["QueueUrl"]
        if attributes:
            await client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    except ClientError as exc:
        if "NonExistentQueue" not in exc.response["Error"]["Code"]:
            raise
        url = (await client.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"]
    arn = (await client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"][
        "QueueArn"
    ]
    return url, arn


async def _ensure_bucket(client: Any, aws: AwsConfig, queue_arn: str) -> None:
    try:
        await client.head_bucket(Bucket=aws.bucket)
    except ClientError as exc:
        # Only "not there" creates it: a 403 (someone else's bucket, missing rights) must surface.
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        log.info("creating bucket", extra={"bucket": aws.bucket})
        create: dict[str, Any] = {"Bucket": aws.bucket}
        if aws.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
        await client.create_bucket(**create)
    await client.put_public_access_block(
        Bucket=aws.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    await client.put_bucket_cors(Bucket=aws.bucket, CORSConfiguration={"CORSRules": cors_rules(aws)})
    await client.put_bucket_lifecycle_configuration(
        Bucket=aws.bucket, LifecycleConfiguration={"Rules": lifecycle_rules(aws)}
    )
    await client.put_bucket_notification_configuration(
        Bucket=aws.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "uploads-to-worker",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    # Only client uploads: derived files written by the worker never loop back.
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": aws.upload_prefix}]}},
                }
            ]
        },
    )
