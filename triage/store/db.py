"""Store: the engine, migrations, and the few writes and reads the worker needs."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    Update,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    union,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from triage.history import Contact
from triage.store.customers import assign_customers, past_contacts
from triage.store.tables import (
    Base,
    DeadLetterRow,
    DeliveryRow,
    IncidentRow,
    MessageRow,
    SlackThreadRow,
    TriageRow,
)

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class DeliveryUpdate:
    id: int
    status: str  # "sent", "skipped", "failed" (final: refused for good) or "retry" (to be tried again)
    detail: str | None = None
    retry_at: datetime | None = None  # with "retry": not before this time


@dataclass(frozen=True)
class Triaged:
    """What one message leaves in the store: the message, its result, its outbox rows."""

    message: MessageRow
    result: TriageRow
    deliveries: list[DeliveryRow] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)  # the customer's (triage/customers.py)


@dataclass(frozen=True)
class RecordPosition:
    """Where an input record sits in Kafka: what identifies it when it has no valid message id."""

    topic: str
    partition: int
    offset: int


DeadLetterClaim = Literal["send", "resend", "sent", "busy"]


@dataclass(frozen=True)
class Backlog:
    """A receiver's deliveries that are due and not sent yet, and since when the oldest is due."""

    receiver: str
    waiting: int
    oldest_due: datetime


class StoreUnavailable(Exception):
    """The database cannot be reached or refused the write; the work must be retried, never skipped."""


MIGRATION_LOCK = 0x7472696167  # "triag": the advisory lock key that serialises migrations on PostgreSQL


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
    waiting busy_timeout for its turn. Read-only work (READ_ONLY) begins deferred: in WAL mode it
    never waits for, or holds up, a writer."""
    read_only = connection.get_execution_options().get("triage_read_only", False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


READ_ONLY = {"triage_read_only": True}


def make_engine(url: str) -> Engine:
    # Enough connections for every pool thread to read at once (writes go through one BatchWriter).
    pool = {"pool_size": 10, "max_overflow": 70}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # connect_timeout: an unreachable server is an outage to retry, not a hang
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5}, **pool)


def _insert_ignoring_conflicts(dialect: str, row_type: type[Base]):
    """INSERT ... ON CONFLICT DO NOTHING (SQLite and PostgreSQL spell it the same way)."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(row_type).on_conflict_do_nothing()


def column_values(row: Base) -> dict[str, Any]:
    """An ORM object's values for a Core INSERT, Python-side column defaults applied, so that every
    row of a multi-row INSERT has the same keys. An autoincrement key is left to the database."""
    values = {}
    for key, default, database_assigned in _insert_columns(row.__table__):
        value = getattr(row, key)
        if value is None:
            if database_assigned:
                continue
            if default is not None:
                value = default.arg(None) if default.is_callable else default.arg
        values[key] = value
    return values


@functools.cache
def _insert_columns(table: Table) -> tuple[tuple[str, Any, bool], ...]:
    """Per column: its key, its Python-side default, and whether the database assigns it."""
    return tuple(
        (column.key, column.default, column.primary_key and column.autoincrement is True)
        for column in table.columns
    )


def missing_sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, when it does not exist."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._reader = self.engine.execution_options(**READ_ONLY)  # same pool, deferred BEGIN on SQLite
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)
        self._claim = _claim_statement(self.engine.dialect.name)
        # SQLite has one write lock, and a thread that finds it taken sleeps in SQLite's busy handler
        # (1, 2, 5, 10 ... ms). This process's writers queue here instead, and wake as soon as it is free.
        self._one_writer = threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext()

    @classmethod
    def existing(cls, url: str) -> Store:
        """A store to read from (report, eval and train --from-store, routes diff): a SQLite file that
        does not exist is StoreUnavailable, not a new empty store whose "0 messages" would be about
        the wrong place."""
        if missing := missing_sqlite_file(url):
            raise StoreUnavailable(
                f"no store at {missing}: the SQLite file does not exist (TRIAGE_DATABASE_URL={url}); "
                "`triage demo` keeps its store in triage-demo.db"
            )
        return cls(url)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self, read_only: bool = False) -> Iterator[Session]:
        """An ORM transaction; database connection failures surface as StoreUnavailable."""
        sessions = self._read_sessions if read_only else self._sessions
        with self._unavailable_on_errors(read_only), sessions.begin() as session:
            yield session

    @contextmanager
    def _transaction(self, read_only: bool = False) -> Iterator[Connection]:
        """A Core transaction, for the paths taken for every message (no ORM session to set up)."""
        engine = self._reader if read_only else self.engine
        with self._unavailable_on_errors(read_only), engine.begin() as connection:
            yield connection

    @contextmanager
    def _unavailable_on_errors(self, read_only: bool) -> Iterator[None]:
        """Writers queue on the process's SQLite lock; connection failures become StoreUnavailable."""
        with nullcontext() if read_only else self._one_writer:
            try:
                yield
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
                if connection.dialect.name == "postgresql":
                    # Two processes starting on an empty database (a worker and `triage ingest`) would both
                    # create alembic_version; the second waits here, then finds the schema current.
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except (OperationalError, SAInterfaceError) as error:
            raise self._unavailable(error) from error

    def ping(self) -> None:
        with self._transaction(read_only=True) as connection:
            connection.execute(text("SELECT 1"))

    # --- messages and results -------------------------------------------------------------------

    def is_processed(self, message_id: str) -> bool:
        with self._transaction(read_only=True) as connection:
            return connection.scalar(_IS_STORED, {"b_id": message_id}) is not None

    def save_triaged(
        self,
        message: MessageRow,
        result: TriageRow,
        deliveries: Iterable[DeliveryRow],
        identities: Sequence[str] = (),
    ) -> bool:
        """Store a message, its result and its outbox rows in one transaction, linked to its customer
        by `identities` (triage/store/customers.py).

        Returns False, writing nothing, when the message id is already stored (a redelivery, a
        duplicate id, or another worker that got there first).
        """
        [stored] = self.save_triaged_many([Triaged(message, result, list(deliveries), list(identities))])
        return stored

    def save_triaged_many(self, items: Sequence[Triaged]) -> list[bool]:
        """Store many messages in one transaction, three multi-row INSERTs (see BatchWriter).

        For each item: True if stored, False if its message id was already stored (also by an
        earlier item of the batch), in which case nothing of it is written."""
        with self._transaction() as connection:
            dialect = connection.dialect.name
            first: dict[str, Triaged] = {}
            for item in items:
                first.setdefault(item.message.id, item)
            assign_customers(connection, [(item.message, item.identities) for item in first.values()])
            inserted = set(
                connection.scalars(
                    _insert_ignoring_conflicts(dialect, MessageRow).returning(MessageRow.id),
                    [column_values(item.message) for item in first.values()],
                )
            )
            stored = [item for item in first.values() if item.message.id in inserted]
            if stored:
                connection.execute(insert(TriageRow), [column_values(item.result) for item in stored])
                deliveries = [column_values(d) for item in stored for d in item.deliveries]
                if deliveries:
                    connection.execute(insert(DeliveryRow), deliveries)
        return [item.message.id in inserted and first[item.message.id] is item for item in items]

    def customer_contacts(self, identities: Sequence[str], at: datetime) -> list[Contact]:
        """The stored messages of the customer with these identities that the history of a message
        written at `at` needs (triage/history.py): two indexed reads in one read transaction."""
        if not identities:
            return []
        with self._transaction(read_only=True) as connection:
            return past_contacts(connection, identities, at)

    def results(self, message_ids: Iterable[str]) -> list[tuple[MessageRow, TriageRow]]:
        """Stored messages with their triage results, in the order of `message_ids`."""
        ids = list(message_ids)
        with self.session(read_only=True) as session:
            query = select(MessageRow, TriageRow).join(TriageRow).where(MessageRow.id.in_(ids))
            found = {message.id: (message, result) for message, result in session.execute(query)}
        return [found[i] for i in ids if i in found]

    def triaged_since(self, since: datetime, batch: int = 1000) -> Iterator[tuple[dict[str, Any], TriageRow]]:
        """Each stored message (parsed JSON) with its triage result, triaged at or after `since`."""
        with self.session(read_only=True) as session:
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
        with self.session(read_only=True) as session:
            query = select(DeliveryRow.receiver, DeliveryRow.status, func.count()).group_by(
                DeliveryRow.receiver, DeliveryRow.status
            )
            return {(receiver, status): count for receiver, status, count in session.execute(query)}

    # --- the outbox -----------------------------------------------------------------------------

    def claim_deliveries(
        self, receivers: str | Sequence[str], claimer: str, limit: int, lease: timedelta
    ) -> list[DeliveryRow]:
        """Take up to `limit` deliveries for one receiver (or several sharing a lane, such as two that post
        to one Slack channel), the most urgent first, then the oldest, for sending.

        Claimable: pending and due (quiet hours over), or claimed by a sender that has not finished
        within the lease (it crashed); and the oldest unfinished delivery of its conversation for this
        receiver, so a conversation's alerts go out in order whichever worker sends them. The claim is
        one UPDATE of the rows a locking subquery picks, so two workers never take the same delivery;
        `attempts` counts claims, so attempts > 1 means an earlier try may have reached the service
        before a crash.
        """
        now = datetime.now(UTC)
        with self._transaction() as connection:
            parameters = {
                "b_receivers": [receivers] if isinstance(receivers, str) else list(receivers),
                "b_now": now,
                "b_expired": now - lease,
                "b_limit": limit,
                "b_claimer": claimer,
            }
            claimed = connection.execute(self._claim, parameters)
            return sorted(
                (DeliveryRow(**row._mapping) for row in claimed), key=lambda row: (-row.priority, row.id)
            )

    def release_claims(self, receiver: str, claimer: str) -> None:
        """End this claimer's leases on a receiver's deliveries still marked as being sent.

        For a lane whose store call failed mid-batch: its claim may have committed although the answer
        was lost, or its batch may have been sent but not recorded. It sends nothing else meanwhile, so
        those deliveries are in doubt, not in progress; they are claimed again at once (attempts > 1,
        so a sender that can tell looks for an earlier post first) instead of after the lease."""
        deliveries = DeliveryRow.__table__
        with self._transaction() as connection:
            connection.execute(
                update(deliveries)
                .where(
                    (deliveries.c.receiver == receiver)
                    & (deliveries.c.claimed_by == claimer)
                    & (deliveries.c.status == "sending")
                )
                .values(claimed_at=datetime(1970, 1, 1, tzinfo=UTC))
            )

    def claimers(self) -> set[str]:
        """Everyone holding a claim now: on deliveries, dead letters and incident updates."""
        deliveries, letters, incidents = DeliveryRow.__table__, DeadLetterRow.__table__, IncidentRow.__table__
        query = union(
            select(deliveries.c.claimed_by.label("c")).where(deliveries.c.status == "sending"),
            select(letters.c.claimed_by.label("c")).where(letters.c.status == "sending"),
            select(incidents.c.update_claimed_by.label("c")).where(
                incidents.c.update_claimed_by.is_not(None)
            ),
        )
        with self._transaction(read_only=True) as connection:
            return {claimer for claimer in connection.scalars(query) if claimer}

    def end_leases(self, claimers: Iterable[str]) -> None:
        """End every lease these claimers hold (processes known to be dead), so their work in doubt is
        taken over at once instead of when the lease runs out."""
        gone = list(claimers)
        if not gone:
            return
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        deliveries, letters, incidents = DeliveryRow.__table__, DeadLetterRow.__table__, IncidentRow.__table__
        with self._transaction() as connection:
            connection.execute(
                update(deliveries)
                .where(deliveries.c.claimed_by.in_(gone) & (deliveries.c.status == "sending"))
                .values(claimed_at=epoch)
            )
            connection.execute(
                update(letters)
                .where(letters.c.claimed_by.in_(gone) & (letters.c.status == "sending"))
                .values(claimed_at=epoch)
            )
            connection.execute(
                update(incidents)
                .where(incidents.c.update_claimed_by.in_(gone))
                .values(update_claimed_at=epoch)
            )

    def finish_deliveries(self, updates: Iterable[DeliveryUpdate]) -> None:
        """Record what happened: sent, skipped or failed is final; "retry" puts the delivery back in the
        queue.

        Rows with the same outcome are updated by one statement (a batch of results-topic deliveries
        is one UPDATE, not hundreds)."""
        now = datetime.now(UTC)
        same_outcome: dict[tuple[str, str | None, datetime | None], list[int]] = {}
        for item in updates:
            same_outcome.setdefault((item.status, item.detail, item.retry_at), []).append(item.id)
        deliveries = DeliveryRow.__table__
        with self._transaction() as connection:
            for (status, detail, retry_at), ids in same_outcome.items():
                values: dict[str, Any] = {"detail": detail}
                if status == "retry":
                    values.update(status="pending", claimed_by=None, claimed_at=None, not_before=retry_at)
                else:
                    values.update(status=status, sent_at=now)
                connection.execute(update(deliveries).where(deliveries.c.id.in_(ids)).values(**values))

    def unfinished_receivers(self) -> list[str]:
        """Receivers with deliveries still to send, including ones no longer in the routing file."""
        query = select(DeliveryRow.receiver).where(DeliveryRow.status.in_(("pending", "sending"))).distinct()
        with self.session(read_only=True) as session:
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
        with self.session(read_only=True) as session:
            return session.scalar(query) or 0

    # --- the dead-letter ledger -----------------------------------------------------------------

    def claim_dead_letter(
        self, position: RecordPosition, code: str, detail: str, claimer: str, lease: timedelta
    ) -> DeadLetterClaim:
        """Decide, once per record, who sends its dead letter.

        "send": it is new; this claimer must publish it, then call dead_letter_sent(). "resend": the
        same, but an earlier claim did not finish (this claimer's own failed try, or a claimer that
        died or did not finish within the lease), so it may have gone out already: the one repeat
        Kafka allows, a publish acknowledged but not yet marked. "sent": it went out; nothing to do.
        "busy": another claimer is publishing it now; ask again later."""
        now = datetime.now(UTC)
        table = DeadLetterRow.__table__
        where = (
            (table.c.kafka_topic == position.topic)
            & (table.c.kafka_partition == position.partition)
            & (table.c.kafka_offset == position.offset)
        )
        with self._transaction() as connection:
            inserted = connection.execute(
                _insert_ignoring_conflicts(connection.dialect.name, DeadLetterRow)
                .values(
                    kafka_topic=position.topic,
                    kafka_partition=position.partition,
                    kafka_offset=position.offset,
                    code=code,
                    detail=detail,
                    status="sending",
                    claimed_by=claimer,
                    claimed_at=now,
                )
                .returning(table.c.kafka_offset)
            )
            if inserted.first() is not None:  # rowcount is not reliable for ON CONFLICT DO NOTHING
                return "send"
            taken_over = connection.execute(
                update(table)
                .where(
                    where
                    & (table.c.status == "sending")
                    & ((table.c.claimed_by == claimer) | (table.c.claimed_at < now - lease))
                )
                .values(claimed_by=claimer, claimed_at=now, code=code, detail=detail)
            )
            if taken_over.rowcount:
                return "resend"
            status = connection.scalar(select(table.c.status).where(where))
        return "sent" if status == "sent" else "busy"

    def dead_letter_sent(self, position: RecordPosition) -> None:
        table = DeadLetterRow.__table__
        with self._transaction() as connection:
            connection.execute(
                update(table)
                .where(
                    (table.c.kafka_topic == position.topic)
                    & (table.c.kafka_partition == position.partition)
                    & (table.c.kafka_offset == position.offset)
                )
                .values(status="sent", sent_at=datetime.now(UTC))
            )

    def backlog(self) -> list[Backlog]:
        """Per receiver, deliveries due and not sent yet (pending, being sent, or failed and waiting
        for their retry), with the time the oldest became due. Deliveries held by quiet hours are not
        due yet; one released by them became due when they ended. Reads only unfinished rows
        (index on status)."""
        now = datetime.now(UTC)
        deferred = (DeliveryRow.attempts == 0) & DeliveryRow.not_before.is_not(None)
        due_since = case((deferred, DeliveryRow.not_before), else_=DeliveryRow.created_at)
        unfinished = DeliveryRow.status.in_(("pending", "sending"))
        query = (
            select(DeliveryRow.receiver, func.count(), func.min(due_since))
            .where(unfinished & ~(deferred & (DeliveryRow.not_before > now)))
            .group_by(DeliveryRow.receiver)
        )
        with self.session(read_only=True) as session:
            return [
                Backlog(receiver, count, _as_utc(oldest))
                for receiver, count, oldest in session.execute(query)
            ]

    # --- Slack threads --------------------------------------------------------------------------

    def slack_thread(self, conversation_id: str, channel: str) -> SlackThreadRow | None:
        with self.session(read_only=True) as session:
            return session.get(SlackThreadRow, (conversation_id, channel))

    def save_slack_thread(self, thread: SlackThreadRow) -> None:
        with self.session() as session:
            session.merge(thread)


def _as_utc(moment: datetime | str) -> datetime:
    """SQLite gives an aggregate of times back as text, without its offset (stored as UTC)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


_IS_STORED = select(MessageRow.__table__.c.id).where(MessageRow.__table__.c.id == bindparam("b_id"))


def _claim_statement(dialect: str) -> Update:
    """The claim as one UPDATE ... WHERE id IN (SELECT ... LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING,
    in Core with bound parameters and built once: it runs for every batch a lane sends."""
    deliveries = DeliveryRow.__table__
    receivers = bindparam("b_receivers", expanding=True)
    now = bindparam("b_now", type_=deliveries.c.claimed_at.type)  # typed: SQLite keeps times as text
    earlier = deliveries.alias("earlier")
    waiting_for_earlier = (
        select(earlier.c.id)
        .where(
            (earlier.c.receiver == deliveries.c.receiver)
            & (earlier.c.conversation_id == deliveries.c.conversation_id)
            & earlier.c.status.in_(("pending", "sending"))
            & (earlier.c.id < deliveries.c.id)
        )
        .exists()
    )
    due = deliveries.c.not_before.is_(None) | (deliveries.c.not_before <= now)
    lease_over = deliveries.c.claimed_at < bindparam("b_expired", type_=deliveries.c.claimed_at.type)
    claimable = (
        deliveries.c.receiver.in_(receivers)
        & (((deliveries.c.status == "pending") & due) | ((deliveries.c.status == "sending") & lease_over))
        & ~waiting_for_earlier
    )
    candidates = (
        select(deliveries.c.id)
        .where(claimable)
        .order_by(deliveries.c.priority.desc(), deliveries.c.id)
        .limit(bindparam("b_limit"))
    )
    if dialect == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(deliveries)
        .where(deliveries.c.id.in_(candidates.scalar_subquery()))
        .values(
            status="sending",
            claimed_by=bindparam("b_claimer", type_=deliveries.c.claimed_by.type),
            claimed_at=now,
            attempts=deliveries.c.attempts + 1,
        )
        .returning(*deliveries.c)
    )
