"""What the feedback loop keeps: where each delivery landed (receipts), the team's labels, and how far
an outside event stream has been read (cursors).

A correction is stored with the deliveries it re-routes in one transaction, and only when one of its
labels is new: a click delivered twice, or a helpdesk event read twice, stores nothing the second time
and sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from triage.store.db import Store, column_values
from triage.store.tables import CursorRow, DeliveryRow, LabelRow, ReceiptRow


@dataclass(frozen=True)
class Correction:
    """The labels of one click or one helpdesk change, and the deliveries the corrected case now needs."""

    labels: list[LabelRow]
    deliveries: list[DeliveryRow] = field(default_factory=list)


def _insert(dialect: str, table: type) -> postgresql.Insert | sqlite.Insert:
    """INSERT with ON CONFLICT clauses (SQLite and PostgreSQL spell them the same way)."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


class FeedbackStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.dialect = store.engine.dialect.name

    # --- receipts -------------------------------------------------------------------------------

    def record_receipt(self, receipt: ReceiptRow) -> None:
        """Remember where a delivery landed (once: a retry that finds its post again adds nothing)."""
        with self.store.session() as session:
            session.execute(
                _insert(self.dialect, ReceiptRow).values(**column_values(receipt)).on_conflict_do_nothing()
            )

    def receipt(self, delivery_id: int) -> ReceiptRow | None:
        with self.store.session(read_only=True) as session:
            return session.get(ReceiptRow, delivery_id)

    def ticket_receipt(self, ticket_id: str, at: datetime, system: str = "zendesk") -> ReceiptRow | None:
        """Triage's latest write to a helpdesk's ticket at or before `at` (None: triage never wrote to it)."""
        query = (
            select(ReceiptRow)
            .where(
                ReceiptRow.system == system,
                ReceiptRow.place == str(ticket_id),
                ReceiptRow.created_at <= at,
            )
            .order_by(ReceiptRow.created_at.desc(), ReceiptRow.delivery_id.desc())
            .limit(1)
        )
        with self.store.session(read_only=True) as session:
            return session.scalars(query).first()

    # --- labels ---------------------------------------------------------------------------------

    def save(
        self, corrections: Sequence[Correction], cursor: tuple[str, str] | None = None
    ) -> list[LabelRow]:
        """Store each correction whose labels are new, with its deliveries, and move the cursor, in one
        transaction. Returns the labels stored now (not those stored before)."""
        stored: list[LabelRow] = []
        dialect = self.dialect
        with self.store.session() as session:
            for correction in corrections:
                new = []
                for label in correction.labels:
                    inserted = session.execute(
                        _insert(dialect, LabelRow)
                        .values(**column_values(label))
                        .on_conflict_do_nothing()
                        .returning(LabelRow.id)
                    ).first()
                    if inserted is not None:
                        label.id = inserted[0]
                        new.append(label)
                if new and correction.deliveries:
                    session.execute(
                        _insert(dialect, DeliveryRow).on_conflict_do_nothing(),
                        [column_values(delivery) for delivery in correction.deliveries],
                    )
                stored.extend(new)
            if cursor is not None:
                name, position = cursor
                upsert = _insert(dialect, CursorRow).values(
                    name=name, position=position, updated_at=datetime.now(UTC)
                )
                session.execute(
                    upsert.on_conflict_do_update(
                        index_elements=["name"],
                        set_={"position": upsert.excluded.position, "updated_at": upsert.excluded.updated_at},
                    )
                )
        return stored

    def labels_of(self, message_id: str) -> list[LabelRow]:
        """A message's labels, oldest first."""
        query = select(LabelRow).where(LabelRow.message_id == message_id).order_by(LabelRow.id)
        with self.store.session(read_only=True) as session:
            return list(session.scalars(query))

    def delivery_payload(self, delivery_id: int) -> dict[str, Any]:
        """What a delivery's receiver renders (its case)."""
        with self.store.session(read_only=True) as session:
            return session.scalars(select(DeliveryRow.payload).where(DeliveryRow.id == delivery_id)).one()

    def receivers_of(self, message_id: str) -> set[str]:
        """The receivers a message has deliveries for (whatever their state)."""
        query = select(DeliveryRow.receiver).where(DeliveryRow.message_id == message_id)
        with self.store.session(read_only=True) as session:
            return set(session.scalars(query))

    # --- cursors --------------------------------------------------------------------------------

    def cursor(self, name: str) -> str | None:
        with self.store.session(read_only=True) as session:
            row = session.get(CursorRow, name)
            return row.position if row else None
