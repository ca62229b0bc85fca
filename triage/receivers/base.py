"""What every receiver implements, and the receiver for kinds that are not configured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from triage.store.tables import DeliveryRow


@dataclass(frozen=True)
class Outcome:
    status: str  # "sent", "skipped", or "failed" (refused for good, never retried; detail says why)
    detail: str | None = None


class DeliveryFailed(Exception):
    """A transient failure: the delivery goes back to the queue and is tried again later
    (after `retry_after_s` when the service said so, e.g. Slack's or Zendesk's Retry-After)."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class Sender(Protocol):
    batch_size: int  # deliveries claimed at a time

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        """Deliver each one; one outcome (or failure) per delivery, in order.

        A delivery with `attempts > 1` was claimed before and may have reached the service before a
        crash; a sender that can tell (Slack metadata, a marker in a Zendesk note) checks first.
        """
        ...


class SkippingSender:
    """For a receiver that cannot send (its service is not configured): each delivery is skipped, counted."""

    batch_size = 500

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        return [Outcome("skipped", self.reason) for _ in deliveries]
