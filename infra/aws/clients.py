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
from infra.settings import Settings


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


def _config(settings: Settings, **extra: Any) -> AioConfig:
    return AioConfig(
        retries={"max_attempts": 4, "mode": "adaptive"},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=50,
        **extra,
    )


async def open_s3(settings: Settings, stack: AsyncExitStack, *, region: str | None = None) -> Any:
    """An S3 client for `region` (default: the region this process serves). A replica region
    opens one for the home region too: presigned URLs are signed for one region's endpoint."""
    endpoint = settings.aws_endpoint_url
    # Path-style addressing keeps presigned URLs valid against a local endpoint (no DNS buckets).
    s3_options = {"addressing_style": "path"} if endpoint else {}
    return await stack.enter_async_context(
        session(region or settings.aws_region).client(
            "s3",
            endpoint_url=endpoint,
            config=_config(settings, signature_version="s3v4", s3=s3_options),
        )
    )


async def open_clients(settings: Settings, stack: AsyncExitStack) -> AwsClients:
    aws = session(settings.aws_region)
    endpoint = settings.aws_endpoint_url
    s3 = await open_s3(settings, stack)
    dynamodb = await stack.enter_async_context(
        aws.client("dynamodb", endpoint_url=endpoint, config=_config(settings))
    )
    sqs = await stack.enter_async_context(aws.client("sqs", endpoint_url=endpoint, config=_config(settings)))
    return AwsClients(s3=s3, dynamodb=dynamodb, sqs=sqs)


def traced(clients: AwsClients) -> AwsClients:
    """The same clients, each call in a client span (infra/observability/tracing.py)."""
    return AwsClients(
        s3=TracedClient(clients.s3, "S3"),
        dynamodb=TracedClient(clients.dynamodb, "DynamoDB"),
        sqs=TracedClient(clients.sqs, "SQS"),
    )
