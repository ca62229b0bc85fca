"""The results topic: one JSON record per processed message, keyed by conversation."""

from __future__ import annotations

import json
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from triage.receivers.base import DeliveryFailed, Outcome
from triage.store.tables import DeliveryRow


class ResultsSender:
    batch_size = 500

    def __init__(self, producer: KafkaProducer, topic: str, timeout_s: float = 30.0) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        payloads = [delivery.payload for delivery in deliveries]
        futures = [
            self.producer.send(
                self.topic,
                key=str(payload["conversation_id"]).encode("utf-8"),
                value=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            )
            for payload in payloads
        ]
        self.producer.flush(timeout=self.timeout_s)
        outcomes: list[Outcome | DeliveryFailed] = []
        for future in futures:
            try:
                future.get(timeout=0)
                outcomes.append(Outcome("sent"))
            except KafkaError as error:
                outcomes.append(DeliveryFailed(f"results topic {self.topic}: {error}"))
        return outcomes
