"""Store: the engine, migrations, and the few writes and reads the worker needs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.orm import Session, aliased, sessionmaker

from triage.store.tables import DeliveryRow, MessageRow, SlackThreadRow, TriageRow

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class DeliveryUpdate:
    id: int
    status: str  # "sent", "skipped" (final) or "failed" (to be tried again)
    detail: str | None = None
    retry_at: datetime | None = None  # with "failed": not before this time


class StoreUnavailable(Exception):
    """The database cannot be reached or refused the write; the work must be retried, never skipped."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by _sqlite_begin: the driver's own implicit BEGIN is switched off.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (reports, demo) never block the worker
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash, which is what we need
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Take the write lock at BEGIN. A transaction that reads and then writes (claiming deliveries)
    would otherwise fail at once with SQLITE_BUSY when another thread wrote in between, instead of
    waiting busy_timeout for its turn."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # connect_timeout: an unreachable server is an outage to retry, not a hang
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=40, connect_args={"connect_timeout": 5}
    )


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction; database connection failures surface as StoreUnavailable."""
        try:
            with self._sessions.begin() as session:
                yield session
        except (OperationalError, SAInterfaceError) as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: Exception) -> StoreUnavailable:
        reason = " ".join(str(getattr(error, "orig", None) or error).split())  # drivers' messages span lines
        return StoreUnavailable(f"database {self.safe_url}: {reason}")

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (safe to run on every start)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except (OperationalError, SAInterfaceError) as error:
            raise self._unavailable(error) from error

    def ping(self) -> None:
        with self.session() as session:
            session.execute(text("SELECT 1"))

    # --- messages and results -------------------------------------------------------------------

    def is_processed(self, message_id: str) -> bool:
        with self.session() as session:
            return session.scalar(select(MessageRow.id).where(MessageRow.id == message_id)) is not None

    def save_triaged(self, message: MessageRow, result: TriageRow, deliveries: Iterable[DeliveryRow]) -> bool:
        """Store a message, its result and its outbox rows in one transaction.

        Returns False, writing nothing, when the message id is already stored (a redelivery, a
        duplicate id, or another worker that got there first).
        """
        try:
            with self.session() as session:
                session.add(message)
                session.flush()  # the message row first: results and deliveries refer to it
                session.add_all([result, *deliveries])
        except IntegrityError:
            if self.is_processed(message.id):
                return False
            raise
        return True

    def results(self, message_ids: Iterable[str]) -> list[tuple[MessageRow, TriageRow]]:
        """Stored messages with their triage results, in the order of `message_ids`."""
        ids = list(message_ids)
        with self.session() as session:
            query = select(MessageRow, TriageRow).join(TriageRow).where(MessageRow.id.in_(ids))
            found = {message.id: (message, result) for message, result in session.execute(query)}
        return [found[i] for i in ids if i in found]

    def triaged_since(self, since: datetime, batch: int = 1000) -> Iterator[tuple[dict[str, Any], TriageRow]]:
        """Each stored message (parsed JSON) with its triage result, triaged at or after `since`."""
        with self.session() as session:
            query = (
                select(MessageRow.parsed, TriageRow)
                .join(TriageRow)
                .where(TriageRow.triaged_at >= since)
                .order_by(TriageRow.triaged_at)
                .execution_options(yield_per=batch)
            )
            yield from session.execute(query)  # rows unpack as (parsed, result)

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """How many deliveries each receiver has in each status."""
        with self.session() as session:
            query = select(DeliveryRow.receiver, DeliveryRow.status, func.count()).group_by(
                DeliveryRow.receiver, DeliveryRow.status
            )
            return {(receiver, status): count for receiver, status, count in session.execute(query)}

    # --- the outbox -----------------------------------------------------------------------------

    def claim_deliveries(
        self, receiver: str, claimer: str, limit: int, lease: timedelta
    ) -> list[DeliveryRow]:
        """Take up to `limit` deliveries for a receiver, oldest first, for sending.

        Claimable: pending and due (quiet hours over), or claimed by a sender that has not finished
        within the lease (it crashed); and the oldest unfinished delivery of its conversation for this
        receiver, so a conversation's alerts go out in order whichever worker sends them. The claim is
        a conditional UPDATE, so two workers never take the same delivery; `attempts` counts claims,
        so attempts > 1 means an earlier try may have reached the service before a crash.
        """
        now = datetime.now(UTC)
        earlier = aliased(DeliveryRow)
        waiting_for_earlier = (
            select(earlier.id)
            .where(
                (earlier.receiver == receiver)
                & (earlier.conversation_id == DeliveryRow.conversation_id)
                & earlier.status.in_(("pending", "sending"))
                & (earlier.id < DeliveryRow.id)
            )
            .exists()
        )
        claimable = (
            (DeliveryRow.receiver == receiver)
            & (
                (
                    (DeliveryRow.status == "pending")
                    & (DeliveryRow.not_before.is_(None) | (DeliveryRow.not_before <= now))
                )
                | ((DeliveryRow.status == "sending") & (DeliveryRow.claimed_at < now - lease))
            )
            & ~waiting_for_earlier
        )
        with self.session() as session:
            candidates = select(DeliveryRow.id).where(claimable).order_by(DeliveryRow.id).limit(limit)
            if session.bind.dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            ids = list(session.scalars(candidates))
            if not ids:
                return []
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id.in_(ids) & claimable)
                .values(
                    status="sending", claimed_by=claimer, claimed_at=now, attempts=DeliveryRow.attempts + 1
                )
                .execution_options(synchronize_session=False)
            )
            rows = session.scalars(
                select(DeliveryRow)
                .where(
                    DeliveryRow.id.in_(ids)
                    & (DeliveryRow.claimed_by == claimer)
                    & (DeliveryRow.claimed_at == now)
                )
                .order_by(DeliveryRow.id)
            )
            return list(rows)

    def finish_deliveries(self, updates: Iterable[DeliveryUpdate]) -> None:
        """Record what happened: sent or skipped is final; "failed" puts the delivery back in the queue.

        Rows with the same outcome are updated by one statement (a batch of results-topic deliveries
        is one UPDATE, not hundreds)."""
        now = datetime.now(UTC)
        same_outcome: dict[tuple[str, str | None, datetime | None], list[int]] = {}
        for item in updates:
            same_outcome.setdefault((item.status, item.detail, item.retry_at), []).append(item.id)
        with self.session() as session:
            for (status, detail, retry_at), ids in same_outcome.items():
                values: dict[str, Any] = {"detail": detail}
                if status == "failed":
                    values.update(status="pending", claimed_by=None, claimed_at=None, not_before=retry_at)
                else:
                    values.update(status=status, sent_at=now)
                session.execute(
                    update(DeliveryRow)
                    .where(DeliveryRow.id.in_(ids))
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )

    def unfinished_receivers(self) -> list[str]:
        """Receivers with deliveries still to send, including ones no longer in the routing file."""
        query = select(DeliveryRow.receiver).where(DeliveryRow.status.in_(("pending", "sending"))).distinct()
        with self.session() as session:
            return list(session.scalars(query))

    def count_due(self, receiver: str | None = None) -> int:
        """Deliveries that should be sent now and are not done yet (quiet-hours waits not counted)."""
        now = datetime.now(UTC)
        query = select(func.count()).where(
            (DeliveryRow.status == "sending")
            | (
                (DeliveryRow.status == "pending")
                & (DeliveryRow.not_before.is_(None) | (DeliveryRow.not_before <= now))
            )
        )
        if receiver is not None:
            query = query.where(DeliveryRow.receiver == receiver)
        with self.session() as session:
            return session.scalar(query) or 0

    # --- Slack threads --------------------------------------------------------------------------

    def slack_thread(self, conversation_id: str, channel: str) -> SlackThreadRow | None:
        with self.session() as session:
            return session.get(SlackThreadRow, (conversation_id, channel))

    def save_slack_thread(self, thread: SlackThreadRow) -> None:
        with self.session() as session:
            session.merge(thread)
