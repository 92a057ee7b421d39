"""OpenTelemetry tracing: off by default; `MEDIAGRAPH_OTEL_ENABLED=true` exports spans over OTLP/HTTP
(the AWS Distro for OpenTelemetry collector forwards them to X-Ray; trace ids are X-Ray shaped).

Spans: the HTTP request (infra/http/request_log.py) → the GraphQL operation (schema/observability.py)
→ each AWS call (`TracedClient`) and Redis command (the redis instrumentation); in the worker,
one span per SQS message → one per pipeline step (`OtelTelemetry`) → AWS and Redis calls.
Tracers are looked up at call time, so clients wrapped before tracing was enabled are traced too.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from infra.observability import request_context
from infra.settings import TracingConfig

_provider: TracerProvider | None = None
_users = 0


_IDLE_SPAN = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)


class _IdleTracer(trace.NoOpTracer):
    """While no span goes anywhere: OpenTelemetry's no-op tracer still builds a context manager,
    a span and a context per call (about 3 % of a cached read's CPU); this one hands out one
    span that records nothing, and touches no context."""

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return contextlib.nullcontext(_IDLE_SPAN)

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return _IDLE_SPAN


_IDLE_TRACER = _IdleTracer()


_global_sdk = False
_global_checked_at = -1.0


def active() -> bool:
    """Whether spans are exported: ours enabled, or an SDK provider installed by someone else
    (OpenTelemetry's global provider is set at most once: looked up at most once a second until
    it is, which keeps the lookup off every request)."""
    global _global_sdk, _global_checked_at
    if _provider is not None or _global_sdk:
        return True
    now = time.monotonic()
    if now - _global_checked_at >= 1.0:
        _global_checked_at = now
        _global_sdk = isinstance(trace.get_tracer_provider(), TracerProvider)
    return _global_sdk


def tracer() -> trace.Tracer:
    if not active():
        return _IDLE_TRACER
    provider = _provider or trace.get_tracer_provider()
    return provider.get_tracer("mediagraph")


def enable(config: TracingConfig, exporter: SpanExporter | None = None) -> TracerProvider:
    """Start exporting spans: to `exporter` (tests: an in-memory one) or to the OTLP endpoint."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}),
        id_generator=AwsXRayIdGenerator(),
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    RedisInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    return provider


def disable() -> None:
    """Flush and stop exporting."""
    global _provider
    if _provider is None:
        return
    RedisInstrumentor().uninstrument()
    _provider.shutdown()
    _provider = None


@contextlib.contextmanager
def session(config: TracingConfig) -> Iterator[None]:
    """Tracing for one process part (the API, the worker); `dev` runs both in one process."""
    global _users
    if not config.enabled:
        yield
        return
    enable(config)
    _users += 1
    try:
        yield
    finally:
        _users -= 1
        if _users == 0:
            disable()


class TracedClient:
    """An aiobotocore client whose API calls (not presigning: no network) each make a client span."""

    def __init__(self, client: Any, service: str) -> None:
        self._client = client
        self._service = service
        self._operations: dict[str, str] = dict(client.meta.method_to_api_mapping)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        operation = self._operations.get(name)
        if operation is None:
            return attribute

        @functools.wraps(attribute)
        async def call(*args: Any, **kwargs: Any) -> Any:
            with tracer().start_as_current_span(
                f"{self._service}.{operation}",
                kind=SpanKind.CLIENT,
                attributes={"rpc.system": "aws-api", "rpc.service": self._service, "rpc.method": operation},
            ):
                # aiobotocore's API methods are plain functions returning a coroutine.
                result = attribute(*args, **kwargs)
                return await result if inspect.isawaitable(result) else result

        return call


class OtelTelemetry:
    """The pipeline's Telemetry port: a span per step; annotations go to the span and the logs."""

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        with tracer().start_as_current_span(f"pipeline.{name}"):
            yield

    def annotate(self, **attributes: str | None) -> None:
        span = trace.get_current_span()
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(f"mediagraph.{key}", value)
        request_id = attributes.get("request_id")
        if request_id:
            # The worker's log lines from here on carry the id of the request that made the upload.
            info = request_context.current()
            if info is None:
                request_context.bind(request_context.RequestInfo(request_id, protocol="worker"))
            else:
                info.request_id = request_id


def mark_error(span: trace.Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
