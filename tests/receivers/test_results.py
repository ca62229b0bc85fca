"""The results topic's sender on a real broker: a delivery tried before is looked for on the topic
before it is sent again, by its delivery id and its message id."""

from __future__ import annotations

import json

import pytest

from tests.conftest import read_topic
from triage import kafka as transport
from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.results import ResultsSender
from triage.settings import KafkaSettings
from triage.store.tables import DeliveryRow


def delivery(delivery_id: int, message_id: str, attempts: int) -> DeliveryRow:
    payload = {"message_id": message_id, "conversation_id": f"conv-{message_id}", "urgency": "normal"}
    return DeliveryRow(
        id=delivery_id, message_id=message_id, conversation_id=f"conv-{message_id}", receiver="_results",
        payload=payload, attempts=attempts,
    )  # fmt: skip


@pytest.fixture
def sender(kafka_settings: KafkaSettings):
    transport.ensure_topics(kafka_settings, [kafka_settings.results_topic])
    producer = transport.make_producer(kafka_settings)
    yield ResultsSender(producer, kafka_settings)
    producer.close(timeout=5)


def sent_ids(kafka_settings: KafkaSettings, expected: int) -> list[str]:
    records = read_topic(kafka_settings.bootstrap_servers, kafka_settings.results_topic, expected)
    return sorted(json.loads(record.value)["message_id"] for record in records)


def test_a_delivery_in_doubt_found_on_the_topic_is_not_sent_again(sender: ResultsSender, kafka_settings):
    first = sender.send_batch([delivery(1, "m-1", attempts=1), delivery(2, "m-2", attempts=1)])
    assert first == [Outcome("sent"), Outcome("sent")]
    # The sender died before marking them: both are tried again, with a third never sent before, and
    # a delivery id the topic holds for another message (a store restored from a backup).
    again = sender.send_batch(
        [delivery(1, "m-1", attempts=2), delivery(2, "m-9", attempts=2), delivery(3, "m-3", attempts=2)]
    )
    assert again[0].status == "sent" and "found on the results topic" in (again[0].detail or "")
    assert again[1:] == [Outcome("sent"), Outcome("sent")]
    assert sent_ids(kafka_settings, 4) == ["m-1", "m-2", "m-3", "m-9"]  # m-1 once


def test_a_topic_it_cannot_read_is_a_failed_try_not_a_second_record(kafka_settings: KafkaSettings):
    producer = transport.make_producer(kafka_settings)
    try:
        missing = kafka_settings.model_copy(update={"results_topic": f"{kafka_settings.results_topic}-gone"})
        outcomes = ResultsSender(producer, missing).send_batch([delivery(1, "m-1", attempts=2)])
    finally:
        producer.close(timeout=5)
    [failed] = outcomes
    assert isinstance(failed, DeliveryFailed) and "cannot read topic" in str(failed)
