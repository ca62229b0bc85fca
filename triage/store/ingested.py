"""The message ids `triage ingest` took in, so that a webhook sent twice produces one record.

A request claims its message id before producing, and the id is marked produced once the broker
acknowledged the record. The claim is what makes two requests for the same id at once, on one ingest
process or on several sharing the store, produce one record: the second finds the claim and is told
to come back. A claim whose process died before the mark is taken over once its lease has passed; a
produced id is claimable again after the dedup window.

The writes of many requests go in one transaction (see triage/ingest/dedup.py), hence the batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from triage.store.db import Store
from triage.store.tables import IngestedRow

Claim = Literal["claimed", "duplicate", "busy"]
TABLE = IngestedRow.__table__


class IngestedStore:
    def __init__(self, store: Store, window_s: float, lease_s: float) -> None:
        self.store = store
        self.window = timedelta(seconds=window_s)
        self.lease = timedelta(seconds=lease_s)
        self._dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite

    def apply(
        self, produced: Sequence[str] = (), released: Sequence[str] = (), claims: Sequence[str] = ()
    ) -> dict[str, Claim]:
        """In one transaction and in this order: mark `produced` ids (the broker acknowledged them),
        drop the claims of `released` ones (producing failed: a retry may claim at once), and claim
        `claims`. Per claimed id: `claimed` (this request produces it), `duplicate` (produced within
        the window) or `busy` (being produced right now, or its producer died less than a lease ago)."""
        now = datetime.now(UTC)
        with self.store.session() as session:
            connection = session.connection()  # Core statements: no ORM bookkeeping per row
            if produced:
                connection.execute(
                    update(TABLE).where(TABLE.c.message_id.in_(produced)).values(produced_at=now)
                )
            if released:
                connection.execute(
                    delete(TABLE).where(TABLE.c.message_id.in_(released), TABLE.c.produced_at.is_(None))
                )
            return self._claim(connection, list(dict.fromkeys(claims)), now) if claims else {}

    def _claim(self, connection: Connection, ids: list[str], now: datetime) -> dict[str, Claim]:
        """One INSERT ... ON CONFLICT DO UPDATE for all the ids (executemany: compiled once, whatever
        their number); the update takes over a dead claim or an id produced before the window."""
        statement = (
            self._dialect.insert(TABLE)
            .on_conflict_do_update(
                index_elements=[TABLE.c.message_id],
                set_={"claimed_at": now, "produced_at": None},
                where=or_(
                    (TABLE.c.produced_at.is_(None)) & (TABLE.c.claimed_at < now - self.lease),
                    TABLE.c.produced_at < now - self.window,
                ),
            )
            .returning(TABLE.c.message_id)
        )
        rows = [{"message_id": i, "claimed_at": now, "produced_at": None} for i in ids]
        claimed = set(connection.scalars(statement, rows))
        others = [i for i in ids if i not in claimed]
        produced = set()
        if others:
            query = select(TABLE.c.message_id).where(
                TABLE.c.message_id.in_(others), TABLE.c.produced_at.is_not(None)
            )
            produced = set(connection.scalars(query))
        return {i: "claimed" if i in claimed else "duplicate" if i in produced else "busy" for i in ids}

    def purge(self) -> int:
        """Forget ids older than the window and a lease: nothing would refuse them any more."""
        cutoff = datetime.now(UTC) - self.window - self.lease
        with self.store.session() as session:
            return session.connection().execute(delete(TABLE).where(TABLE.c.claimed_at < cutoff)).rowcount
