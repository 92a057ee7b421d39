"""Notifiers: an HMAC-signed webhook (aiohttp) and an SNS topic. Both retry transient failures
with exponential backoff and full jitter, and remember in Redis what they delivered.

Webhook request:

    POST <url>
    Content-Type: application/json
    X-Mediagraph-Event-Id: <media id>:COMPLETED[:r<round>]   the same on every retry
    X-Mediagraph-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

Receivers recompute the HMAC over the raw body, compare in constant time, refuse an old `t`
(replays), and drop an Event-Id they have seen (delivery is at least once)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from services.core.events import MediaEvent

log = logging.getLogger("mediagraph.notify")
REMEMBER_S = 7 * 24 * 3600


class NotificationFailed(RuntimeError):
    """Transient failures outlasted the retries: the S3 event is retried later."""


def payload(event: MediaEvent) -> dict[str, Any]:
    media = event.media
    return {
        "eventId": event.dedupe_key,
        "type": event.type.value,
        "occurredAt": event.occurred_at.isoformat(),
        "media": {
            "id": media.id,
            "ownerId": media.owner_id,
            "status": media.status.value,
            "contentType": media.content_type,
            "size": media.size,
            "sha256": media.sha256,
            "width": media.width,
            "height": media.height,
        },
    }


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _Delivered:
    """What a notifier already delivered, by event id, in Redis."""

    def __init__(self, redis: Redis | RedisCluster, prefix: str, notifier: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}notified:{notifier}:"

    async def seen(self, event: MediaEvent) -> bool:
        return bool(await self._redis.exists(self._prefix + event.dedupe_key))

    async def remember(self, event: MediaEvent) -> None:
        await self._redis.set(self._prefix + event.dedupe_key, b"1", ex=REMEMBER_S)


class _Transient(Exception):
    """A delivery that may succeed if tried again: a connection error, a timeout, 429 or 5xx."""


class WebhookNotifier:
    name = "webhook"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        secret: bytes,
        redis: Redis | RedisCluster,
        *,
        prefix: str,
        attempts: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        self._session = session
        self._url = url
        self._secret = secret
        self._delivered = _Delivered(redis, prefix, self.name)
        self._attempts = attempts
        self._backoff_s = backoff_s

    async def notify(self, event: MediaEvent) -> None:
        if await self._delivered.seen(event):
            return
        body = json.dumps(payload(event), separators=(",", ":")).encode()
        # Exponential backoff with full jitter between attempts, the last failure reported.
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_random_exponential(multiplier=self._backoff_s),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            status: int = await retrying(self._post, event, body)
        except _Transient as exc:
            raise NotificationFailed(f"webhook: {exc} after {self._attempts} attempts") from exc
        if not 200 <= status < 300:
            # The receiver refuses this request: retrying cannot help. Logged, not retried.
            log.error("webhook refused the event", extra={"status": status, "event": event.dedupe_key})
        await self._delivered.remember(event)

    async def _post(self, event: MediaEvent, body: bytes) -> int:
        """One delivery: its HTTP status, or _Transient for what a retry may mend."""
        headers = {
            "Content-Type": "application/json",
            "X-Mediagraph-Event-Id": event.dedupe_key,
            "X-Mediagraph-Signature": sign(self._secret, int(time.time()), body),
        }
        try:
            async with self._session.post(self._url, data=body, headers=headers) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Transient(repr(exc)) from exc
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}")
        return status


class SnsNotifier:
    name = "sns"

    def __init__(self, client: Any, topic_arn: str, redis: Redis | RedisCluster, *, prefix: str) -> None:
        self._client = client
        self._topic_arn = topic_arn
        self._delivered = _Delivered(redis, prefix, self.name)

    async def notify(self, event: MediaEvent) -> None:
        if await self._delivered.seen(event):
            return
        # botocore retries throttling and 5xx with backoff (the client's retry config).
        await self._client.publish(
            TopicArn=self._topic_arn,
            Message=json.dumps(payload(event)),
            MessageAttributes={"type": {"DataType": "String", "StringValue": event.type.value}},
        )
        await self._delivered.remember(event)
