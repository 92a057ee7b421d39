"""The API's OperationRecorder (schema/observability.py): GraphQL operations counted and timed in
Prometheus, their spans on this process's tracer, and the HTTP access log told which operation
ran. Installed by the composition root (infra/roots/app.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from opentelemetry.trace import Tracer

from infra.observability import metrics, request_context
from infra.observability.tracing import tracer


class PrometheusOperations:
    def __init__(self) -> None:
        # Each (operation, type)'s children, looked up once: prometheus_client's labels() takes
        # a lock and builds a key per call, a request's largest metrics cost.
        self._answers: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._errors: dict[tuple[str, str], Any] = {}

    def tracer(self) -> Tracer:
        return tracer()

    def errors_sent(self, operation_label: str, codes: list[str]) -> None:
        for code, count in Counter(codes).items():  # one child per code, not per error
            child = self._errors.get((operation_label, code))
            if child is None:  # labels and codes are bounded (schema/observability.py)
                child = self._errors[(operation_label, code)] = metrics.GRAPHQL_ERRORS.labels(
                    operation=operation_label, code=code
                )
            child.inc(count)

    def answered(self, operation_label: str, op_type: str, elapsed_s: float) -> None:
        answers = self._answers.get((operation_label, op_type))
        if answers is None:  # the labels are bounded (schema/observability.py): so is this
            answers = self._answers[(operation_label, op_type)] = (
                metrics.GRAPHQL_REQUESTS.labels(operation=operation_label, type=op_type),
                metrics.GRAPHQL_DURATION.labels(operation=operation_label, type=op_type),
            )
        answers[0].inc()
        answers[1].observe(elapsed_s)

    def subscription_started(self, operation_label: str, op_type: str) -> None:
        metrics.GRAPHQL_REQUESTS.labels(operation=operation_label, type=op_type).inc()
        metrics.SUBSCRIPTIONS_ACTIVE.labels(operation=operation_label).inc()

    def subscription_ended(self, operation_label: str) -> None:
        metrics.SUBSCRIPTIONS_ACTIVE.labels(operation=operation_label).dec()

    def tell_access_log(
        self, *, op_type: str, operation: str, name: str | None, user: str | None, codes: list[str]
    ) -> None:
        info = request_context.current()
        if info is None or info.protocol != "http":
            return
        info.operation, info.operation_type, info.operation_name = operation, op_type, name
        info.user = user
        info.error_codes.extend(codes)
