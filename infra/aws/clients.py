"""aioboto3 sessions over one process-wide botocore data loader; clients opened once (in the
lifespan) and injected."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.loaders import Loader, create_loader

from infra.observability.tracing import TracedClient
from infra.settings import AwsConfig


@dataclass(frozen=True, slots=True)
class AwsClients:
    s3: Any
    dynamodb: Any
    sqs: Any


# botocore parses its JSON (endpoints, partitions, each service's model: about 2 s of CPU) once
# per loader. Sessions are cheap beside that, and each process makes several (the clients, the
# home region's S3 client in a replica region, Rekognition, SNS; every test's runtime): they
# share this one loader, which only caches what it read from botocore's own data files.
_LOADER: Loader = create_loader()


def session(region: str) -> aioboto3.Session:
    """A session for `region` whose botocore data comes from the process-wide loader."""
    core = AioSession()
    core.register_component("data_loader", _LOADER)
    return aioboto3.Session(botocore_session=core, region_name=region)


def _config(**extra: Any) -> AioConfig:
    return AioConfig(
        retries={"max_attempts": 4, "mode": "adaptive"},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=50,
        **extra,
    )


async def open_s3(aws: AwsConfig, stack: AsyncExitStack, *, region: str | None = None) -> Any:
    """An S3 client for `region` (default: the region this process serves). A replica region
    opens one for the home region too: presigned URLs are signed for one region's endpoint."""
    endpoint = aws.endpoint_url
    # Path-style addressing keeps presigned URLs valid against a local endpoint (no DNS buckets).
    s3_options = {"addressing_style": "path"} if endpoint else {}
    return await stack.enter_async_context(
        session(region or aws.region).client(
            "s3",
            endpoint_url=endpoint,
            config=_config(signature_version="s3v4", s3=s3_options),
        )
    )


async def open_clients(aws: AwsConfig, stack: AsyncExitStack) -> AwsClients:
    regional = session(aws.region)
    endpoint = aws.endpoint_url
    s3 = await open_s3(aws, stack)
    dynamodb = await stack.enter_async_context(
        regional.client("dynamodb", endpoint_url=endpoint, config=_config())
    )
    sqs = await stack.enter_async_context(regional.client("sqs", endpoint_url=endpoint, config=_config()))
    return AwsClients(s3=s3, dynamodb=dynamodb, sqs=sqs)


def traced(clients: AwsClients) -> AwsClients:
    """The same clients, each call in a client span (infra/observability/tracing.py)."""
    return AwsClients(
        s3=TracedClient(clients.s3, "S3"),
        dynamodb=TracedClient(clients.dynamodb, "DynamoDB"),
        sqs=TracedClient(clients.sqs, "SQS"),
    )


async def queue_urls(aws: AwsConfig) -> tuple[str, str]:
    """The URLs of the S3-event queue and its dead-letter queue."""
    async with AsyncExitStack() as stack:
        sqs = (await open_clients(aws, stack)).sqs
        queue = (await sqs.get_queue_url(QueueName=aws.queue))["QueueUrl"]
        dlq = (await sqs.get_queue_url(QueueName=aws.dlq))["QueueUrl"]
        return str(queue), str(dlq)
