"""Notifier: where completion events go besides subscriptions (an SNS topic, a webhook).

Delivery is at least once: an adapter retries transient failures itself, with backoff and
jitter, remembers what it delivered (so a redelivered S3 event does not notify twice), and
raises when it gives up, which leaves the S3 event on the queue to be retried and, in the end,
dead-lettered."""

from __future__ import annotations

from typing import Protocol

from services.core.events import MediaEvent


class Notifier(Protocol):
    name: str

    async def notify(self, event: MediaEvent) -> None:
        """Deliver the event once. Raises when a transient failure outlasts the retries."""
