"""Stored deliveries for receiver tests: real store rows, built the way the pipeline builds them."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from sqlalchemy import select

from triage.message import SupportMessage, Triage
from triage.pipeline import alert_details, alert_payload, case_record, message_row, triage_row
from triage.receivers.base import DeliveryFailed, Outcome, Sender
from triage.routing.tree import Match
from triage.store import DeliveryUpdate, Store
from triage.store.tables import DeliveryRow

LEASE = timedelta(seconds=60)
_ids = count(1)


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    return store


class FakeRecord:
    """The three fields of a Kafka record message_row() reads."""

    def __init__(self, value: bytes) -> None:
        self.value, self.topic, self.partition, self.offset = value, "in", 0, next(_ids)


def store_case(
    store: Store,
    receiver: str,
    body: str = "Checkout fails for everyone",
    conversation: str = "conv-1",
    urgency: str = "high",
    repeat_interval_s: float | None = None,
    judged: dict | None = None,
    route: tuple[str, tuple[str, ...]] = ("route.routes[1]", ("urgency >= high",)),
    **message_fields,
) -> DeliveryRow:
    """`judged` overrides the Triage's fields; `route` is the path and matchers that chose the receiver."""
    message = SupportMessage.model_validate(
        {"id": f"m-{next(_ids)}", "conversation_id": conversation, "body": body, **message_fields}
    )
    triage = Triage.model_validate(
        {
            "urgency": urgency,
            "sentiment": "negative",
            "category": "outage",
            "language": "en",
            "summary": body[:200],
            "confidence": 0.8,
            "model": "test",
            **(judged or {}),
        }
    )
    interval = timedelta(seconds=repeat_interval_s) if repeat_interval_s is not None else None
    match = Match(receiver, route[0], interval, None, route[1])
    payload = alert_payload({**case_record(message, triage, [receiver]), **alert_details(message)}, match)
    delivery = DeliveryRow(
        message_id=message.id, conversation_id=message.conversation_key, receiver=receiver, payload=payload
    )
    store.save_triaged(
        message_row(message, FakeRecord(message.model_dump_json().encode()), message.model_dump_json()),
        triage_row(message, triage, [receiver]),
        [delivery],
    )
    with store.session() as session:  # the stored row, with the id the database gave it
        return session.scalars(select(DeliveryRow).where(DeliveryRow.message_id == message.id)).one()


def claim_one(store: Store, receiver: str) -> DeliveryRow:
    [row] = store.claim_deliveries(receiver, "test", 1, LEASE)
    return row


def send_one(store: Store, sender: Sender, receiver: str) -> Outcome | DeliveryFailed:
    """Claim, send and record one delivery, as an outbox lane does (a failure stays claimed)."""
    row = claim_one(store, receiver)
    [outcome] = sender.send_batch([row])
    if isinstance(outcome, Outcome):
        store.finish_deliveries([DeliveryUpdate(row.id, outcome.status, outcome.detail)])
    return outcome
