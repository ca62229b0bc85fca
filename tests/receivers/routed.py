"""Routed cases for the receiver tests: a routing file, a message routed as the pipeline routes it,
stored with its deliveries, and the worker's own senders (Receivers) sending them through the outbox."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy import select, update

from tests.receivers.conftest import FakeRecord
from triage.message import SupportMessage, Triage
from triage.pipeline import Pipeline, message_row, triage_row
from triage.receivers.outbox import Outbox
from triage.receivers.registry import Receivers
from triage.routing import RoutingTree, parse_routing
from triage.settings import Settings
from triage.store import Store
from triage.store.tables import DeliveryRow

_ids = count(1)
LEASE = timedelta(seconds=60)


def judged(urgency: str = "urgent", **fields: Any) -> Triage:
    return Triage.model_validate(
        {
            "urgency": urgency,
            "sentiment": "negative",
            "category": "outage",
            "language": "en",
            "summary": "Checkout is down for the whole team",
            "confidence": 0.9,
            "model": "llm:test",
            **fields,
        }
    )


def route_case(
    store: Store, tree: RoutingTree, body: str, triage: Triage | None = None, **message: Any
) -> list[DeliveryRow]:
    """Route a message as the worker does (Pipeline.route) and store it with its deliveries."""
    fields = {"id": f"m-{next(_ids)}", "conversation_id": "conv-1", "body": body, **message}
    parsed = SupportMessage.model_validate(fields)
    triage = triage or judged()
    pipeline = Pipeline(Settings(database_url="sqlite:///unused.db"), store, None, tree, None, None, "t")  # type: ignore[arg-type]
    receivers, deliveries = pipeline.route(parsed, triage)
    store.save_triaged(
        message_row(parsed, FakeRecord(parsed.model_dump_json().encode()), parsed.model_dump_json()),
        triage_row(parsed, triage, receivers),
        deliveries,
    )
    with store.session() as session:
        return list(session.scalars(select(DeliveryRow).where(DeliveryRow.message_id == parsed.id)))


def senders(settings: Settings, store: Store, tree: RoutingTree) -> dict:
    return Receivers(settings, None, store).senders(tree)  # type: ignore[arg-type]


@contextmanager
def outbox(settings: Settings, store: Store, tree: RoutingTree) -> Iterator[Outbox]:
    box = Outbox(store, senders(settings, store, tree), "test", LEASE, idle_wait_s=0.05)
    box.start()
    try:
        yield box
    finally:
        box.stop()


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def crash_after_send(store: Store) -> None:
    """As if the process died after the service got the delivery and before it was marked: the rows
    are `sending` again under a lease that has run out, so the next outbox claims them again."""
    with store.session() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.status == "sent")
            .values(status="sending", claimed_by="dead", claimed_at=datetime.now(UTC) - LEASE * 2)
        )


def statuses(store: Store) -> list[tuple[str, str, int]]:
    with store.session() as session:
        return [
            (row.receiver, row.status, row.attempts)
            for row in session.scalars(select(DeliveryRow).order_by(DeliveryRow.id))
        ]


def tree_of(text: str) -> RoutingTree:
    return parse_routing(text)
