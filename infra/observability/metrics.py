"""Prometheus metrics: every series the service exports, defined once, and their listener.

/metrics is served on a listener of its own (`metrics_listener`: MEDIAGRAPH_METRICS_HOST/_PORT,
loopback by default), never on the API's port: only operators reach it. prometheus_client's
server renders each scrape in a thread of its own, off the event loop, so a scrape of many series
does not hold up /healthz or any request.

Names follow the Prometheus conventions: a `mediagraph_` namespace, base units in the name
(`_seconds`), `_total` on counters, and labels whose values are bounded by the code (GraphQL root
fields, error codes, outcomes), never by the client: the operation name a client chooses goes to
the logs, not into a label. docs/operations.md lists them with the alerts worth setting.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("mediagraph.metrics")

# Request latency: 5 ms (a cached read) to 10 s (a client's request timeout).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Upload lag: S3 delivers in about a second, a retry backs off for minutes, the DLQ means hours.
LAG_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

GRAPHQL_REQUESTS = Counter(
    "mediagraph_graphql_requests_total",
    "GraphQL operations started, by root field and operation type.",
    ["operation", "type"],
)
GRAPHQL_DURATION = Histogram(
    "mediagraph_graphql_request_duration_seconds",
    "Time to answer a query or mutation, by root field and operation type.",
    ["operation", "type"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_ERRORS = Counter(
    "mediagraph_graphql_errors_total",
    "GraphQL errors sent to clients, by root field and extensions.code.",
    ["operation", "code"],
)
WEBSOCKETS_OPEN = Gauge("mediagraph_websocket_connections", "WebSocket connections open on this process.")
SUBSCRIPTIONS_ACTIVE = Gauge(
    "mediagraph_subscriptions_active", "GraphQL subscriptions running on this process.", ["operation"]
)
EVENTS_PUBLISHED = Counter(
    "mediagraph_events_published_total", "Media events published to Redis, by event type.", ["type"]
)
EVENTS_DEDUPLICATED = Counter(
    "mediagraph_events_deduplicated_total", "Publishes dropped because that exact change was announced."
)
OUTBOX_DEFERRED = Counter(
    "mediagraph_outbox_deferred_total",
    "Committed changes whose event could not be published at once (Redis unreachable): left in "
    "the outbox for the relay.",
)
OUTBOX_RELAYED = Counter(
    "mediagraph_outbox_relayed_total",
    "Events published from the outbox by the relay or a redelivery, not by their writer.",
)
OUTBOX_PENDING = Gauge(
    "mediagraph_outbox_pending",
    "Outbox items the relay's last pass left (not yet due, or Redis unreachable).",
)
EVENTS_DELIVERED = Counter("mediagraph_events_delivered_total", "Media events queued for a local subscriber.")
FANOUT_WRITES = Counter(
    "mediagraph_fanout_writes_total",
    "Subscription messages of shared groups, by how they left: written at once ('now'), or "
    "waiting for a socket whose buffer is full ('waited': clients reading slowly).",
    ["how"],
)


def count_fanout_pass(now: int, waited: int) -> None:
    """One event's pass over a shared group (subscriptions/fanout.py): two increments per
    event, not one per subscriber."""
    if now:
        FANOUT_WRITES.labels(how="now").inc(now)
    if waited:
        FANOUT_WRITES.labels(how="waited").inc(waited)


EVENTS_DROPPED = Counter(
    "mediagraph_events_dropped_total",
    "Media events a local subscriber did not get, by reason (slow_consumer, undecodable, subscribe_failed).",
    ["reason"],
)
WORKER_EVENTS = Counter(
    "mediagraph_worker_events_total",
    "S3 notices handled by the worker, by outcome (completed, rejected, duplicate, ignored, failed).",
    ["outcome"],
)
WORKER_MESSAGES = Counter(
    "mediagraph_worker_messages_total",
    "SQS messages finished by the worker, by result (deleted, retried, released; held: kept in "
    "hand and retried while a dependency is unreachable).",
    ["result"],
)
WORKER_DURATION = Histogram(
    "mediagraph_worker_message_duration_seconds",
    "Time the worker spent on one SQS message.",
    buckets=LATENCY_BUCKETS,
)
PROCESSING_LAG = Histogram(
    "mediagraph_upload_processing_lag_seconds",
    "From the S3 event time to the status change it caused, by outcome.",
    ["outcome"],
    buckets=LAG_BUCKETS,
)
QUEUE_MESSAGES = Gauge(
    "mediagraph_queue_messages",
    "Approximate number of visible messages in the S3-event queue and its DLQ, as last read.",
    ["queue"],
)
CACHE_REQUESTS = Counter(
    "mediagraph_cache_requests_total", "Cache lookups, by cache and result (hit, miss).", ["cache", "result"]
)

RATE_LIMIT_LOCAL = Counter(
    "mediagraph_rate_limit_local_total",
    "Rate-limit checks made against this process's own buckets because Redis could not answer.",
)
CACHE_INVALIDATION_FAILURES = Counter(
    "mediagraph_cache_invalidation_failures_total",
    "Listing-page invalidations that could not reach Redis after a committed write (pages may be "
    "stale for up to page_cache_ttl_s).",
)


def record_cache(cache: str, *, hit: bool) -> None:
    """Count one lookup of a named cache (e.g. "page", "url"): hit ratio = hit / (hit + miss)."""
    CACHE_REQUESTS.labels(cache=cache, result="hit" if hit else "miss").inc()


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of one series (0 if it was never touched): for tests and health checks."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


@contextlib.contextmanager
def metrics_listener(host: str, port: int) -> Iterator[int]:
    """Serve /metrics on host:port (0: a free port) from threads of its own; yields the port."""
    server, thread = start_http_server(port, addr=host)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def serving_metrics(host: str, port: int) -> Iterator[None]:
    """/metrics on a listener of its own for as long as the block runs, or nothing when `port` is 0."""
    if not port:
        yield
        return
    with metrics_listener(host, port) as bound:
        log.info("metrics listening", extra={"url": f"http://{host}:{bound}/metrics"})
        yield
