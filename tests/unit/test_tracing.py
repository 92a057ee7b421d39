"""Tracing is off unless the settings turn it on, and a session turns it off again."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from infra.observability import tracing
from tests.conftest import make_settings


def _recording() -> bool:
    # Never ended: nothing is sent to the (absent) OTLP endpoint.
    return tracing.tracer().start_span("probe").get_span_context().is_valid


def test_off_by_default() -> None:
    settings = make_settings("http://127.0.0.1:1", "redis://127.0.0.1:1/0")
    assert settings.otel_enabled is False
    with tracing.session(settings.tracing):
        assert not _recording()


def test_on_when_enabled_and_off_after_the_last_session() -> None:
    settings = make_settings("http://127.0.0.1:1", "redis://127.0.0.1:1/0", otel_enabled=True)
    with tracing.session(settings.tracing):
        with tracing.session(settings.tracing):  # `dev`: the API and the worker in one process
            assert _recording()
        assert _recording()
    assert not _recording()


def test_span_ids_are_x_ray_shaped() -> None:
    settings = make_settings("http://127.0.0.1:1", "redis://127.0.0.1:1/0", otel_enabled=True)
    exporter = InMemorySpanExporter()
    tracing.enable(settings.tracing, exporter)
    try:
        with tracing.tracer().start_as_current_span("probe"):
            pass
    finally:
        tracing.disable()
    (span,) = exporter.get_finished_spans()
    assert span.context is not None and span.start_time is not None
    # X-Ray wants the trace id to start with the epoch seconds of its start, in hex.
    epoch_hex = f"{span.context.trace_id:032x}"[:8]
    assert abs(int(epoch_hex, 16) - span.start_time // 10**9) <= 1
