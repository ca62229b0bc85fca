"""The right to erasure: every row of the store that is about one customer, removed in one transaction.

The customer is found by what they wrote with (`--customer ID`, `--email`, `--phone`, normalised as
in triage/customers.py, plain or as the digest a store without original text keeps), then by every key
those identities link to. Removed, for their messages: the triage results, the outbox deliveries
(the alerts' payloads quote them), where those landed (receipts), labels, escalations and
acknowledgements, the ingest ledger's ids, the Slack threads and incidents no one else is in; their
identities; and the dead letters and silences whose text names them. Each table's count is returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, Text, cast, delete, func, or_, select

from triage.customers import digest, plain_identities
from triage.store.customers import customer_keys
from triage.store.db import Store
from triage.store.tables import (
    AcknowledgementRow,
    CustomerIdentityRow,
    DeadLetterRow,
    DeliveryRow,
    EscalationRow,
    IncidentRow,
    IngestedRow,
    LabelRow,
    MessageRow,
    ReceiptRow,
    SilenceRow,
    SlackThreadRow,
    TriageRow,
)

CHUNK = 500  # ids per IN (...): well under SQLite's and PostgreSQL's parameter limits
MIN_NEEDLE = 5  # shorter texts would match what is not theirs in free text (dead letters, silences)


def forget_customer(
    store: Store, customer_id: str | None = None, email: str | None = None, phone: str | None = None
) -> dict[str, int]:
    """Remove everything about the customer; rows removed per table (tables with none left out)."""
    plain = plain_identities(customer_id, email, phone)
    if not plain:
        raise ValueError("name the customer: --customer ID, --email ADDRESS or --phone NUMBER")
    removed: dict[str, int] = {}
    with store.session() as session:
        connection = session.connection()
        Eraser(connection, removed).erase(plain, [v for v in (customer_id, email, phone) if v])
    return {table: count for table, count in removed.items() if count}


class Eraser:
    def __init__(self, connection: Connection, removed: dict[str, int]) -> None:
        self.connection = connection
        self.removed = removed

    def erase(self, plain: list[str], given: list[str]) -> None:
        identities_table = CustomerIdentityRow.__table__
        candidates = plain + [digest(identity) for identity in plain]
        keys = customer_keys(self.connection, plain)
        identities = set(candidates) | set(
            self._select(identities_table.c.identity, identities_table.c.customer_key, keys)
        )
        ids = {identity.removeprefix("id:") for identity in identities if identity.startswith("id:")}
        messages = MessageRow.__table__
        message_ids = set(self._select(messages.c.id, messages.c.customer_key, keys))
        message_ids |= set(self._select(messages.c.id, messages.c.customer_id, ids))
        plain_known = [identity for identity in {*plain, *identities} if not identity.startswith("sha256:")]
        needles = {text.strip() for text in given} | {i.split(":", 1)[1] for i in plain_known}
        message_ids |= self._unlinked_messages(needles)
        conversations = set(self._select(messages.c.conversation_id, messages.c.id, message_ids))
        self._erase_messages(message_ids)
        self._erase_threads(conversations)
        self._delete(identities_table, identities_table.c.customer_key, keys)
        self._delete(identities_table, identities_table.c.identity, identities)
        self._erase_mentions(needles)

    def _unlinked_messages(self, needles: set[str]) -> set[str]:
        """Messages stored before customers were linked (no key) that carry their address."""
        messages = MessageRow.__table__
        texts = [needle for needle in needles if len(needle) >= MIN_NEEDLE]
        if not texts:
            return set()
        query = select(messages.c.id).where(
            messages.c.customer_key.is_(None)
            & or_(*(messages.c.raw.contains(text, autoescape=True) for text in texts))
        )
        return set(self.connection.scalars(query))

    def _erase_messages(self, message_ids: set[str]) -> None:
        deliveries = DeliveryRow.__table__
        incidents = {
            incident
            for incident in self._select(deliveries.c.incident_id, deliveries.c.message_id, message_ids)
            if incident is not None
        }
        delivery_ids = set(self._select(deliveries.c.id, deliveries.c.message_id, message_ids))
        escalations, acks = EscalationRow.__table__, AcknowledgementRow.__table__
        self._delete(escalations, escalations.c.source_delivery_id, delivery_ids)
        self._delete(escalations, escalations.c.subject, {f"message:{m}" for m in message_ids})
        receipts = ReceiptRow.__table__
        self._delete(receipts, receipts.c.delivery_id, delivery_ids)
        self._delete(receipts, receipts.c.message_id, message_ids)
        self._delete(LabelRow.__table__, LabelRow.__table__.c.message_id, message_ids)
        self._delete(acks, acks.c.message_id, message_ids)
        self._delete(deliveries, deliveries.c.id, delivery_ids)
        self._erase_incidents(incidents)
        self._delete(TriageRow.__table__, TriageRow.__table__.c.message_id, message_ids)
        self._delete(IngestedRow.__table__, IngestedRow.__table__.c.message_id, message_ids)
        self._delete(MessageRow.__table__, MessageRow.__table__.c.id, message_ids)

    def _erase_incidents(self, incidents: set[int]) -> None:
        """Incidents left with no case: theirs alone (their group key may be the customer's name)."""
        deliveries, table = DeliveryRow.__table__, IncidentRow.__table__
        others = set(self._select(deliveries.c.incident_id, deliveries.c.incident_id, incidents))
        alone = incidents - others
        escalations, acks = EscalationRow.__table__, AcknowledgementRow.__table__
        self._delete(escalations, escalations.c.subject, {f"incident:{i}" for i in alone})
        self._delete(acks, acks.c.incident_id, alone)
        self._delete(table, table.c.id, alone)

    def _erase_threads(self, conversations: set[str]) -> None:
        """Slack threads of their conversations that no one else's message is in."""
        messages, threads = MessageRow.__table__, SlackThreadRow.__table__
        shared = set(self._select(messages.c.conversation_id, messages.c.conversation_id, conversations))
        self._delete(threads, threads.c.conversation_id, conversations - shared)

    def _erase_mentions(self, needles: set[str]) -> None:
        """Dead letters and silences whose text names them (a silence on `customer.id = c-9`)."""
        texts = [needle.lower() for needle in needles if len(needle) >= MIN_NEEDLE]
        if not texts:
            return
        letters, silences = DeadLetterRow.__table__, SilenceRow.__table__
        for table, column in ((letters, letters.c.detail), (silences, cast(silences.c.matchers, Text))):
            found = or_(*(func.lower(column).contains(text, autoescape=True) for text in texts))
            self._count(table, self.connection.execute(delete(table).where(found)).rowcount)

    def _select(self, column: Any, where: Any, values: Iterable[Any]) -> Iterable[Any]:
        for chunk in _chunks(values):
            yield from self.connection.scalars(select(column).where(where.in_(chunk)).distinct())

    def _delete(self, table: Table, where: Any, values: Iterable[Any]) -> None:
        for chunk in _chunks(values):
            self._count(table, self.connection.execute(delete(table).where(where.in_(chunk))).rowcount)

    def _count(self, table: Table, rows: int) -> None:
        self.removed[table.name] = self.removed.get(table.name, 0) + max(rows, 0)


def _chunks(values: Iterable[Any]) -> Iterable[Sequence[Any]]:
    items = list(dict.fromkeys(values))
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
