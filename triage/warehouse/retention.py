"""TRIAGE_STORE__RETENTION_DAYS: rows older than that leave the store, but only rows the warehouse has.

A message goes with everything that hangs on it (its result, deliveries, labels, receipts, escalations,
acknowledgements), and only when each of those that the warehouse keeps is at or before its table's
cursor for this warehouse: a row changed after it was sent (a delivery retried) waits for the next sync.
A delivery still pending or sending keeps its message. An incident goes once no delivery points at it
and its last version is in the warehouse. With no cursor for a table, none of its rows counts as sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, false, select
from sqlalchemy.orm import Session

from triage.store import Store
from triage.store.tables import (
    AcknowledgementRow,
    DeliveryRow,
    EscalationRow,
    IncidentRow,
    LabelRow,
    MessageRow,
    ReceiptRow,
    TriageRow,
)
from triage.warehouse import cursors
from triage.warehouse.cursors import Position
from triage.warehouse.sync import SOURCES, Source, at_or_before

BATCH = 1000  # messages (or incidents) deleted per transaction


def _sent(source: Source, position: Position | None) -> ColumnElement[bool]:
    condition = at_or_before(source, position)
    return false() if condition is None else condition


def apply(store: Store, warehouse_url: str, days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete what is older than `days` and in the warehouse; rows deleted per store table."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    positions = cursors.read_all(store, cursors.identity(warehouse_url))
    sent = {source.table: _sent(source, positions.get(source.spec.name)) for source in SOURCES}
    unsent_dependant = (
        exists().where((TriageRow.message_id == MessageRow.id) & ~sent[TriageRow])
        | exists().where(
            (DeliveryRow.message_id == MessageRow.id)
            & (~sent[DeliveryRow] | DeliveryRow.status.in_(("pending", "sending")))
        )
        | exists().where((LabelRow.message_id == MessageRow.id) & ~sent[LabelRow])
    )
    old_messages = (
        select(MessageRow.id)
        .where(MessageRow.received_at < cutoff, sent[MessageRow], ~unsent_dependant)
        .limit(BATCH)
    )
    old_incidents = (
        select(IncidentRow.id)
        .where(
            IncidentRow.closes_at < cutoff,
            sent[IncidentRow],
            ~exists().where(DeliveryRow.incident_id == IncidentRow.id),
        )
        .limit(BATCH)
    )
    deleted: dict[str, int] = {}
    while _delete_batch(store, old_messages, _delete_messages, deleted):
        pass
    while _delete_batch(store, old_incidents, _delete_incidents, deleted):
        pass
    return deleted


def _delete_batch(store: Store, query, delete_them, deleted: dict[str, int]) -> bool:
    with store.session() as session:
        ids = list(session.scalars(query))
        if ids:
            for table, count in delete_them(session, ids).items():
                deleted[table] = deleted.get(table, 0) + count
    return len(ids) == BATCH


def _delete_messages(session: Session, ids: list[str]) -> dict[str, int]:
    delivery_ids = select(DeliveryRow.id).where(DeliveryRow.message_id.in_(ids))
    statements = {
        "receipts": delete(ReceiptRow).where(ReceiptRow.message_id.in_(ids)),
        "escalations": delete(EscalationRow).where(EscalationRow.source_delivery_id.in_(delivery_ids)),
        "acknowledgements": delete(AcknowledgementRow).where(AcknowledgementRow.message_id.in_(ids)),
        "labels": delete(LabelRow).where(LabelRow.message_id.in_(ids)),
        "deliveries": delete(DeliveryRow).where(DeliveryRow.message_id.in_(ids)),
        "triage_results": delete(TriageRow).where(TriageRow.message_id.in_(ids)),
        "messages": delete(MessageRow).where(MessageRow.id.in_(ids)),
    }
    return _run(session, statements)


def _delete_incidents(session: Session, ids: list[int]) -> dict[str, int]:
    statements = {
        "acknowledgements": delete(AcknowledgementRow).where(AcknowledgementRow.incident_id.in_(ids)),
        "incidents": delete(IncidentRow).where(IncidentRow.id.in_(ids)),
    }
    return _run(session, statements)


def _run(session: Session, statements: dict) -> dict[str, int]:
    counts = {}
    for table, statement in statements.items():
        count = session.execute(statement.execution_options(synchronize_session=False)).rowcount
        if count:
            counts[table] = count
    return counts
