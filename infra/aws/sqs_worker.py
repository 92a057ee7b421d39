"""SqsWorker: long-polls the S3-event queue and hands each ObjectCreated notice to the
ProcessingService. A message is deleted only after every record in it was handled.

Two kinds of failure, two budgets:

- Transient (a dependency is unreachable: Redis, S3 or DynamoDB connection errors, timeouts,
  throttling, 5xx): the message is kept in hand and retried with backoff, its visibility
  extended meanwhile, for up to `outage_tolerance_s` (default 5 min). It is not received
  again, so SQS's receive count (the poison budget) is not spent: an outage shorter than that
  never sends a message to the DLQ. Past it, the message is given back like any failure.
- Anything else (a bug, a malformed body, a refusal no retry can change): the message goes back
  with exponential backoff through its visibility and reaches the DLQ after
  `max_receive_count` receives, within seconds.

While a message is in hand, a heartbeat keeps it invisible `visibility_timeout_s` ahead, so the
queue's visibility timeout can stay short: a worker that dies costs that long, not the length
of the work.

Up to `concurrency` messages are in hand at once, each in its own task: a free slot is filled by
the next receive at once, so one slow message never holds back a batch. The image decoding they
do is bounded apart, by the decoding memory budget (`infra/media/budget.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from opentelemetry.trace import SpanKind
from redis.exceptions import BusyLoadingError, ClusterError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.observability import metrics
from infra.observability.tracing import mark_error, tracer
from services.ingest.processing import ObjectCreated, Outcome, ProcessingService

log = logging.getLogger("mediagraph.worker")
MAX_BACKOFF_S = 900


class PoisonMessage(ValueError):
    """A message that no retry can make sense of: it will reach the DLQ."""


_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says a dependency is unreachable or overloaded, rather
    than that this message cannot be processed."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            RedisConnectionError
            | RedisTimeoutError
            | BusyLoadingError
            | ClusterError
            | RedisClusterException
            | BotoConnectionError
            | HTTPClientError
            | ConnectionError
            | TimeoutError,
        ):
            return True
        if isinstance(current, ClientError):
            error = current.response.get("Error", {})
            status = int(current.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if error.get("Code") in _TRANSIENT_CODES or status >= 500:
                return True
        current = current.__cause__ or current.__context__
    return False


def parse_notices(body: str) -> list[ObjectCreated]:
    """S3 event notification (direct or wrapped by SNS) → ObjectCreated notices.

    Keys arrive URL-encoded ('+' for spaces); moto omits `sequencer`, real S3 sends it."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification":
            message = json.loads(message["Message"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PoisonMessage("body is not an S3 event notification") from exc
    if not isinstance(message, dict):
        raise PoisonMessage("body is not an S3 event notification")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise PoisonMessage("no Records in S3 event notification")
    notices = []
    for record in records:
        try:
            if not str(record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            obj = record["s3"]["object"]
            event_time = record.get("eventTime")
            notices.append(
                ObjectCreated(
                    key=unquote_plus(obj["key"]),
                    size=obj.get("size"),
                    sequencer=obj.get("sequencer"),
                    event_time=datetime.fromisoformat(event_time) if event_time else None,
                )
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise PoisonMessage("malformed S3 event record") from exc
    return notices


class SqsWorker:
    def __init__(
        self,
        client: Any,
        queue_url: str,
        processing: ProcessingService,
        *,
        wait_s: int = 10,
        batch: int = 10,
        retry_base_s: float = 2.0,
        dlq_url: str | None = None,
        concurrency: int = 10,
        outage_tolerance_s: float = 300.0,
        visibility_timeout_s: float | None = None,
        transient_backoff_max_s: float = 10.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._concurrency = concurrency
        self._tasks: set[asyncio.Task[None]] = set()
        self._outage_tolerance_s = outage_tolerance_s
        self._transient_backoff_max_s = transient_backoff_max_s
        # None: no heartbeat (the queue's visibility timeout applies as it is).
        self._visibility_timeout_s = visibility_timeout_s
        self._client = client
        self._queue_url = queue_url
        self._processing = processing
        self._wait_s = wait_s
        self._batch = batch
        self._retry_base_s = retry_base_s
        self._stopping = asyncio.Event()
        self._dlq_url = dlq_url
        self._in_hand: asyncio.Future[list[None]] | None = None
        self._abandoned = False

    def stop(self) -> None:
        """Finish the messages in hand, receive no more."""
        self._stopping.set()

    def abandon(self) -> None:
        """Past the grace period: stop the messages in hand; each returns to the queue at once
        (its visibility reset to 0) for another worker, or this one restarted, to take."""
        self._stopping.set()
        self._abandoned = True
        if self._in_hand is not None:
            self._in_hand.cancel()
        for task in self._tasks:
            task.cancel()

    @property
    def in_hand(self) -> int:
        """Messages being handled right now."""
        return len(self._tasks)

    async def run(self) -> None:
        """Receive and handle until stopped. Periodic jobs (the sweep, the purge, the queue-depth
        gauges) are not this loop's: the worker's scheduler runs them (infra/roots/worker.py)."""
        while not self._stopping.is_set():
            try:
                await self._fill()
            except Exception:
                log.exception("receive failed; retrying")
                await asyncio.sleep(1.0)
        # Stopping: the messages in hand finish (or, abandoned, go back to the queue).
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _fill(self) -> None:
        """Wait for a free slot, then receive as many messages as there are free slots; each
        is handled in a task of its own."""
        while len(self._tasks) >= self._concurrency and not self._stopping.is_set():
            await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
        if self._stopping.is_set():
            return
        for message in await self._receive(min(self._batch, self._concurrency - len(self._tasks))):
            task = asyncio.create_task(self._handle(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _receive(self, up_to: int) -> list[dict[str, Any]]:
        response = await self._client.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=up_to,
            WaitTimeSeconds=self._wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    async def poll_once(self) -> int:
        """Receive one batch and handle it to the end (tests and tools; `run` keeps slots full)."""
        messages = await self._receive(self._batch)
        # Shielded: a shutdown lets the messages in hand finish instead of half-processing them;
        # only `abandon` cuts them short, and then they go back to the queue.
        batch = asyncio.gather(*(self._handle(m) for m in messages))
        self._in_hand = batch
        try:
            await asyncio.shield(batch)
        except asyncio.CancelledError:
            # gather() cancelled by `abandon` ends in CancelledError too: that one is ours.
            if not self._abandoned:
                raise
        finally:
            self._in_hand = None
        return len(messages)

    async def _handle(self, message: dict[str, Any]) -> None:
        receipt = message["ReceiptHandle"]
        heartbeat = None
        if self._visibility_timeout_s:
            heartbeat = asyncio.create_task(self._heartbeat(receipt, self._visibility_timeout_s))

        async def stop_heartbeat() -> None:
            # Before the message is deleted, backed off or released: never a renewal after that.
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat

        try:
            await self._handle_in_hand(message, receipt, stop_heartbeat)
        finally:
            await stop_heartbeat()

    async def _heartbeat(self, receipt: str, timeout_s: float) -> None:
        """Keep the message in hand invisible `timeout_s` ahead, renewed every third of it."""
        while True:
            await asyncio.sleep(max(timeout_s / 3, 0.2))
            try:
                await self._client.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=receipt,
                    VisibilityTimeout=max(1, round(timeout_s)),
                )
            except Exception as exc:
                log.warning("visibility of a message in hand not extended: %r", exc)

    async def _process(self, message: dict[str, Any]) -> None:
        """Every notice of the message; on a transient failure, retried in hand (see the module's
        note) until it succeeds, another failure comes, or the outage outlasts the tolerance."""
        loop = asyncio.get_running_loop()
        outage_since: float | None = None
        delay = 0.2
        while True:
            try:
                for notice in parse_notices(message["Body"]):
                    outcome = await self._processing.handle(notice)
                    _count(notice, outcome)
                    log.info("s3 event handled", extra={"key": notice.key, "outcome": outcome.value})
                return
            except Exception as exc:
                if not is_transient(exc) or self._stopping.is_set():
                    raise
                now = loop.time()
                outage_since = now if outage_since is None else outage_since
                if now - outage_since >= self._outage_tolerance_s:
                    raise
                metrics.WORKER_MESSAGES.labels(result="held").inc()
                log.warning(
                    "dependency unavailable; message held and retried",
                    extra={"message_id": message.get("MessageId"), "error": repr(exc), "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._transient_backoff_max_s)

    async def _handle_in_hand(
        self, message: dict[str, Any], receipt: str, stop_heartbeat: Callable[[], Awaitable[None]]
    ) -> None:
        started = time.perf_counter()
        with tracer().start_as_current_span(
            "worker.message",
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "aws_sqs", "messaging.message.id": message.get("MessageId", "")},
        ) as span:
            try:
                try:
                    await self._process(message)
                finally:
                    await stop_heartbeat()
            except asyncio.CancelledError:
                await self._release(receipt)
                raise
            except Exception as exc:
                mark_error(span, exc)
                metrics.WORKER_EVENTS.labels(outcome="failed").inc()
                metrics.WORKER_MESSAGES.labels(result="retried").inc()
                receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                log.warning(
                    "message failed; left for retry",
                    exc_info=True,
                    extra={"message_id": message.get("MessageId"), "receives": receives, "error": repr(exc)},
                )
                await self._back_off(receipt, receives)
                return
            finally:
                metrics.WORKER_DURATION.observe(time.perf_counter() - started)
            try:
                await self._client.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt)
            except ClientError as exc:
                # Its visibility lapsed and another receive holds it now (SQS gives that one a new
                # handle): that receive finds the work done and deletes it.
                log.warning("processed message not deleted", extra={"error": repr(exc)})
                return
            metrics.WORKER_MESSAGES.labels(result="deleted").inc()

    async def _release(self, receipt: str) -> None:
        metrics.WORKER_MESSAGES.labels(result="released").inc()
        log.warning("message released unfinished at shutdown")
        try:
            await self._client.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
            )
        except Exception:
            log.exception("could not release; the queue's visibility timeout applies")

    async def refresh_queue_depths(self) -> None:
        """Read the queue's and the DLQ's approximate depth into `mediagraph_queue_messages`."""
        for name, url in (("main", self._queue_url), ("dlq", self._dlq_url)):
            if url is None:
                continue
            try:
                response = await self._client.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )
            except Exception:
                log.exception("could not read queue depth", extra={"queue": name})
                continue
            depth = int(response.get("Attributes", {}).get("ApproximateNumberOfMessages", "0"))
            metrics.QUEUE_MESSAGES.labels(queue=name).set(depth)

    async def _back_off(self, receipt: str, receives: int) -> None:
        # Exponential backoff with full jitter, through the message's own visibility timeout.
        delay = min(MAX_BACKOFF_S, self._retry_base_s * 2 ** (receives - 1))
        try:
            await self._client.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=receipt,
                VisibilityTimeout=int(random.uniform(0, delay)),
            )
        except Exception:
            log.exception("could not back off; the queue's visibility timeout applies")


def _count(notice: ObjectCreated, outcome: Outcome) -> None:
    metrics.WORKER_EVENTS.labels(outcome=outcome.value).inc()
    if outcome in (Outcome.COMPLETED, Outcome.REJECTED) and notice.event_time is not None:
        event_time = notice.event_time
        if event_time.tzinfo is None:
            event_time = event_time.replace(tzinfo=UTC)
        lag = (datetime.now(UTC) - event_time).total_seconds()
        metrics.PROCESSING_LAG.labels(outcome=outcome.value).observe(max(lag, 0.0))
