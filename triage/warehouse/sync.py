"""`sync`: copy what the store gained or changed since the last run to the warehouse, table by table.

Each table is read in (time, key) order from its cursor, in batches; a batch is upserted by key and
only then the cursor moves, in a transaction of its own. A crash between the two sends the batch
again on the next run, which replaces the same keys: each row is in the warehouse once.

Rows are read only up to SETTLE_S before the sync began: a row is stamped when its statement runs and
seen when its transaction commits, so a row stamped just before the cursor moved past its time could
become visible after; waiting this long (and for clocks of several workers to agree within it) keeps
the cursor from overtaking a row that is not yet visible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from triage.settings import Settings
from triage.store import Store
from triage.store.tables import Base, DeliveryRow, IncidentRow, LabelRow, MessageRow, TriageRow
from triage.warehouse import cursors, rows, schema
from triage.warehouse.cursors import Position
from triage.warehouse.targets.base import Row, Target

SETTLE_S = 5.0


@dataclass(frozen=True)
class Source:
    """Where a warehouse table's rows come from: the store table, its cursor's (time, key) columns."""

    spec: schema.TableSpec
    table: type[Base]
    at: InstrumentedAttribute[datetime]
    key: InstrumentedAttribute[Any]
    convert: Callable[[Session, Sequence[Any], bool], list[Row]]
    unread: tuple[str, ...] = ()  # store columns the warehouse does not need (the raw text, JSON blobs)

    def columns(self) -> list[Any]:
        """The columns read: plain rows rather than ORM objects, and no large column decoded for nothing."""
        return [column for column in self.table.__table__.columns if column.key not in self.unread]

    def key_value(self, text: str) -> Any:
        """A cursor's key (kept as text) as the key column's type."""
        return int(text) if self.key.type.python_type is int else text


SOURCES: tuple[Source, ...] = (
    Source(schema.MESSAGES, MessageRow, MessageRow.received_at, MessageRow.id, rows.messages, ("raw",)),
    Source(schema.RESULTS, TriageRow, TriageRow.triaged_at, TriageRow.message_id, rows.results),
    Source(
        schema.DELIVERIES, DeliveryRow, DeliveryRow.changed_at, DeliveryRow.id, rows.deliveries, ("payload",)
    ),
    Source(
        schema.INCIDENTS, IncidentRow, IncidentRow.changed_at, IncidentRow.id, rows.incidents, ("centroid",)
    ),
    Source(schema.LABELS, LabelRow, LabelRow.stored_at, LabelRow.id, rows.labels),
)


def after(source: Source, position: Position | None) -> ColumnElement[bool] | None:
    """Rows past `position` in the source's (time, key) order; None: every row."""
    if position is None:
        return None
    key = source.key_value(position.key)
    return (source.at > position.at) | ((source.at == position.at) & (source.key > key))


def at_or_before(source: Source, position: Position | None) -> ColumnElement[bool] | None:
    """Rows the warehouse has (at or before the cursor); None: no row yet."""
    if position is None:
        return None
    key = source.key_value(position.key)
    return (source.at < position.at) | ((source.at == position.at) & (source.key <= key))


def sync(store: Store, target: Target, settings: Settings, settle_s: float = SETTLE_S) -> dict[str, int]:
    """Copy every table's new and changed rows; the number of rows sent per table (`messages`, ...).
    A WarehouseUnavailable from the target stops the run; the cursors keep what was done."""
    warehouse = cursors.identity(settings.warehouse.url)
    until = datetime.now(UTC) - timedelta(seconds=settle_s)
    counts = {}
    for source in SOURCES:
        target.ensure_table(source.spec)
    for source in SOURCES:
        counts[source.spec.name] = _sync_table(store, target, source, warehouse, settings, until)
    return counts


def _sync_table(
    store: Store, target: Target, source: Source, warehouse: str, settings: Settings, until: datetime
) -> int:
    position = cursors.read(store, source.spec.name, warehouse)
    sent = 0
    while True:
        query = select(*source.columns()).where(source.at <= until)
        condition = after(source, position)
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(source.at, source.key).limit(settings.warehouse.batch_size)
        with store.session(read_only=True) as session:
            batch = session.execute(query).all()
            if not batch:
                return sent
            converted = source.convert(session, batch, settings.store_original_text)
            last = batch[-1]
            position = Position(rows.utc(getattr(last, source.at.key)), str(getattr(last, source.key.key)))
        target.upsert(source.spec, converted)
        cursors.write(store, source.spec.name, warehouse, position)
        sent += len(batch)
        if len(batch) < settings.warehouse.batch_size:
            return sent
