"""Linking messages to customers, in the writer's transaction (no call to anything but the store).

`customer_identities` maps each identity ever seen (triage/customers.py) to a customer key. A message
takes the key of its most specific identity the table knows (id, then e-mail, then phone), else its
own first identity; its identities not in the table are added under that key. So a chat message with
`customer.id` and `customer.email` links the e-mail, and a later e-mail with only the address finds
the same customer. When a message's identities were known under two keys (the person wrote by e-mail,
then by chat with an id, before anything linked them), the two are merged into one: the other key's
messages and identities move to the winner's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, DateTime, bindparam, func, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from triage.customers import digest, own_key
from triage.history import TREND_MESSAGES, WEEK, Contact
from triage.store.tables import CustomerIdentityRow, MessageRow, TriageRow

_IDENTITIES = CustomerIdentityRow.__table__
_MESSAGES = MessageRow.__table__
_RESULTS = TriageRow.__table__


def known_keys(connection: Connection, found: Iterable[str]) -> dict[str, str]:
    """identity → customer key, for those of `found` the store knows (one indexed query)."""
    wanted = list(dict.fromkeys(found))
    if not wanted:
        return {}
    query = select(_IDENTITIES.c.identity, _IDENTITIES.c.customer_key).where(
        _IDENTITIES.c.identity.in_(wanted)
    )
    return {identity: key for identity, key in connection.execute(query)}


def customer_keys(connection: Connection, plain: Sequence[str]) -> set[str]:
    """Every key a customer given by plain identities (`id:c-9`, `email:...`) may be stored under, in
    a store with or without original text: the identities themselves, plain and as digests (a key
    never linked further), and the keys the table links them to (`triage forget`, a customer's
    timeline)."""
    candidates = [*plain, *(digest(identity) for identity in plain)]
    return set(candidates) | set(known_keys(connection, candidates).values())


def resolve(found: Sequence[str], known: dict[str, str]) -> tuple[str | None, set[str]]:
    """The customer key for a message's identities (most specific known one's, else its own), and
    every key they are known under (more than one until a merge)."""
    keys = {known[identity] for identity in found if identity in known}
    key = next((known[identity] for identity in found if identity in known), own_key(list(found)))
    if key is not None:
        keys.add(key)
    return key, keys


def assign_customers(connection: Connection, items: Sequence[tuple[MessageRow, Sequence[str]]]) -> None:
    """Set each message's customer_key and record its identities; merge keys the messages join.

    One SELECT for the whole batch; an INSERT and, only when two customers turn out to be one, two
    UPDATEs. Items are taken in order, so a batch holding a person's chat and e-mail links them."""
    found = [identity for _, identities in items for identity in identities]
    if not found:
        return
    known = known_keys(connection, found)
    new: dict[str, str] = {}
    now = datetime.now(UTC)
    for message, identities in items:
        key, keys = resolve(identities, known)
        message.customer_key = key
        if key is None:
            continue
        others = keys - {key}
        if others:
            connection.execute(
                update(_MESSAGES).where(_MESSAGES.c.customer_key.in_(others)).values(customer_key=key)
            )
            connection.execute(
                update(_IDENTITIES).where(_IDENTITIES.c.customer_key.in_(others)).values(customer_key=key)
            )
            for identity, linked in list(known.items()):
                if linked in others:
                    known[identity] = key
            for identity, linked in list(new.items()):
                if linked in others:
                    new[identity] = key
        for identity in identities:
            if identity not in known:
                known[identity] = new[identity] = key
    if new:
        module = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(
            module.insert(CustomerIdentityRow).on_conflict_do_nothing(),
            [{"identity": identity, "customer_key": key, "linked_at": now} for identity, key in new.items()],
        )


def _past_contacts_query():
    """The customer's messages for their history, in one query: those of the 7 days up to the
    message, their last few (the sentiment trend) and their first (days since first contact), for
    every key the message's identities are known under (read just before, on the same connection):
    the index on (customer_key, created_at) finds their rows. (A subquery for the keys, OR-ed with
    the message's own key, made PostgreSQL scan the whole table.)"""
    moment = func.coalesce(_MESSAGES.c.created_at, _MESSAGES.c.received_at)
    at = bindparam("b_at", type_=DateTime(timezone=True))
    theirs = (
        select(
            _MESSAGES.c.id,
            moment.label("at"),
            _MESSAGES.c.channel,
            _RESULTS.c.urgency,
            _RESULTS.c.sentiment,
            _RESULTS.c.category,
        )
        .select_from(_MESSAGES.join(_RESULTS, _RESULTS.c.message_id == _MESSAGES.c.id))
        .where(_MESSAGES.c.customer_key.in_(bindparam("b_keys", expanding=True)) & (moment <= at))
    )
    week = theirs.where(moment >= bindparam("b_since", type_=DateTime(timezone=True)))
    last = theirs.order_by(moment.desc()).limit(TREND_MESSAGES - 1)
    first = theirs.order_by(moment).limit(1)
    return union_all(*(select(part.subquery()) for part in (week, last, first)))


_PAST = _past_contacts_query()


def past_contacts(connection: Connection, found: Sequence[str], at: datetime) -> list[Contact]:
    """The customer's stored messages the history of a message written at `at` needs (repeats
    possible: customer_history takes each once)."""
    if not found:
        return []
    at = at.astimezone(UTC)
    _, keys = resolve(found, known_keys(connection, found))  # two indexed reads on one connection
    parameters = {"b_keys": sorted(keys), "b_at": at, "b_since": at - WEEK}
    return [
        Contact(message_id, _as_utc(moment), channel, urgency, sentiment, category)
        for message_id, moment, channel, urgency, sentiment, category in connection.execute(_PAST, parameters)
    ]


def _as_utc(moment: datetime | str) -> datetime:
    """SQLite gives times back as text without their offset (stored as UTC)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
