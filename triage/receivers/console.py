"""The console receiver: one log line per case, for demos and dry runs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from triage.receivers.base import DeliveryFailed, Outcome
from triage.store.tables import DeliveryRow

log = logging.getLogger("triage.console")


class ConsoleSender:
    batch_size = 100

    def __init__(self, name: str) -> None:
        self.name = name

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        for case in (delivery.payload for delivery in deliveries):
            log.info(
                "[%s] %s %s/%s %s: %s",
                self.name,
                case["message_id"],
                case["urgency"],
                case["sentiment"],
                case["category"],
                case["summary"],
            )
        return [Outcome("sent") for _ in deliveries]
