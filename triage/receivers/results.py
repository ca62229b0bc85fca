"""The results topic: one JSON record per processed message, keyed by conversation.

Each record carries its delivery's and its message's ids in the headers `triage.delivery_id` and
`triage.message_id`. A delivery tried before (its sender died between the broker's acknowledgement and
the store's mark, or the send failed) is looked for among the topic's newest records first, by both
ids (a store restored from a backup may hand out a delivery id again), and not sent again when found.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from triage.dlq import recent_headers
from triage.kafka import BrokerUnavailable
from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.results_format import ResultsEncoder
from triage.settings import KafkaSettings
from triage.store.tables import DeliveryRow

DELIVERY_ID = "triage.delivery_id"
MESSAGE_ID = "triage.message_id"


class ResultsSender:
    batch_size = 500

    def __init__(
        self,
        producer: KafkaProducer,
        kafka: KafkaSettings,
        timeout_s: float = 30.0,
        encoder: ResultsEncoder | None = None,
    ) -> None:
        self.producer = producer
        self.encoder = encoder
        self.kafka = kafka
        self.topic = kafka.results_topic
        self.timeout_s = timeout_s

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        try:
            published = self._published([d for d in deliveries if d.attempts > 1])
        except BrokerUnavailable as error:
            return [DeliveryFailed(f"results topic {self.topic}: {error}") for _ in deliveries]
        futures = {
            delivery.id: self.producer.send(
                self.topic,
                key=str(delivery.payload["conversation_id"]).encode("utf-8"),
                value=self._value(delivery.payload),
                headers=[
                    (DELIVERY_ID, str(delivery.id).encode()),
                    (MESSAGE_ID, delivery.message_id.encode()),
                ],
            )
            for delivery in deliveries
            if (str(delivery.id), delivery.message_id) not in published
        }
        with contextlib.suppress(KafkaError):  # a timeout: each record's future says whether it went out
            self.producer.flush(timeout=self.timeout_s)
        outcomes: list[Outcome | DeliveryFailed] = []
        for delivery in deliveries:
            future = futures.get(delivery.id)
            if future is None:
                outcomes.append(
                    Outcome("sent", "found on the results topic: an earlier try was acknowledged")
                )
                continue
            try:
                future.get(timeout=0)
                outcomes.append(Outcome("sent"))
            except KafkaError as error:
                outcomes.append(DeliveryFailed(f"results topic {self.topic}: {error}"))
        return outcomes

    def _value(self, payload: dict) -> bytes:
        if self.encoder is None:
            return json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return self.encoder.encode(payload)

    def _published(self, in_doubt: Sequence[DeliveryRow]) -> set[tuple[str, str]]:
        """Which of the deliveries tried before are on the topic already: (delivery id, message id)."""
        if not in_doubt:
            return set()
        wanted = {(str(delivery.id), delivery.message_id) for delivery in in_doubt}
        found = recent_headers(self.kafka, self.topic)
        return wanted & {(headers.get(DELIVERY_ID, ""), headers.get(MESSAGE_ID, "")) for headers in found}
