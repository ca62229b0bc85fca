"""The message ids `triage ingest` took in, so that a webhook sent twice produces one record.

A request claims its message id before producing (one INSERT ... ON CONFLICT), and marks it produced
once the broker acknowledged the record. The claim is what makes two requests for the same id at once,
on one ingest process or on several sharing the store, produce one record: the second finds the claim
and is told to come back. A claim whose process died before the acknowledgement is taken over once
its lease has passed; a produced id is claimable again after the dedup window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from triage.store.db import Store
from triage.store.tables import IngestedRow

Claim = Literal["claimed", "duplicate", "busy"]


class IngestedStore:
    def __init__(self, store: Store, window_s: float, lease_s: float) -> None:
        self.store = store
        self.window = timedelta(seconds=window_s)
        self.lease = timedelta(seconds=lease_s)
        module = postgresql if store.engine.dialect.name == "postgresql" else sqlite
        self._insert = module.insert(IngestedRow)

    def claim(self, message_id: str) -> Claim:
        """`claimed`: this request produces the message; `duplicate`: it was produced within the window;
        `busy`: another request is producing it right now (or died doing so less than a lease ago)."""
        now = datetime.now(UTC)
        table = IngestedRow.__table__
        statement = (
            self._insert.values(message_id=message_id, claimed_at=now, produced_at=None)
            .on_conflict_do_update(
                index_elements=[table.c.message_id],
                set_={"claimed_at": now, "produced_at": None},
                where=or_(
                    (table.c.produced_at.is_(None)) & (table.c.claimed_at < now - self.lease),
                    table.c.produced_at < now - self.window,
                ),
            )
            .returning(table.c.message_id)
        )
        with self.store.session() as session:
            if session.execute(statement).first() is not None:
                return "claimed"
            produced = session.execute(
                select(table.c.produced_at).where(table.c.message_id == message_id)
            ).first()
        return "duplicate" if produced is not None and produced[0] is not None else "busy"

    def produced(self, message_id: str) -> None:
        """The broker acknowledged the record: the id is a duplicate from now on."""
        with self.store.session() as session:
            session.execute(
                update(IngestedRow)
                .where(IngestedRow.message_id == message_id)
                .values(produced_at=datetime.now(UTC))
            )

    def release(self, message_id: str) -> None:
        """Producing failed: the helpdesk's retry may claim the id at once."""
        with self.store.session() as session:
            session.execute(
                delete(IngestedRow).where(
                    IngestedRow.message_id == message_id, IngestedRow.produced_at.is_(None)
                )
            )

    def purge(self) -> int:
        """Forget ids older than the window and a lease: nothing would refuse them any more."""
        cutoff = datetime.now(UTC) - self.window - self.lease
        with self.store.session() as session:
            return session.execute(delete(IngestedRow).where(IngestedRow.claimed_at < cutoff)).rowcount
