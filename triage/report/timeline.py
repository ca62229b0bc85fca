"""`triage report --customer ID`: one customer's timeline, everything the store holds about them in order.

The customer is found by the id, e-mail address or phone number given (normalised and, when the store
keeps no original text, digested as the worker does: triage/customers.py), or by their customer key.
Their messages (survey answers shown with their score), triage results, alerts and the team's labels
come in the order they happened, across every channel and the whole stored history. With
`TRIAGE_STORE_ORIGINAL_TEXT=false` the timeline shows no text of the customer's (body, subject,
summary): only what happened, when, and the judgements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from triage.classify.survey import band_name
from triage.customers import digest, plain_identities
from triage.message import Survey
from triage.routing import RESULTS_RECEIVER
from triage.store.tables import CustomerIdentityRow, DeliveryRow, LabelRow, MessageRow, TriageRow

PHONE = re.compile(r"\+?[\d\s().-]{5,}")
TEXT_CHARS = 160  # a message's text is cut to this many characters
KINDS = ("message", "survey", "triage", "alert", "label")  # the order of events at the same moment


class UnknownCustomer(LookupError):
    """No message of the store belongs to the customer asked for."""


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # message | survey | triage | alert | label
    message_id: str
    fields: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        when = self.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        parts = [str(value) for value in self.fields.values() if value not in (None, "")]
        return f"{when}  {self.kind:<7}  {self.message_id}  " + " · ".join(parts)


@dataclass(frozen=True)
class Timeline:
    asked: str
    key: str
    events: list[Event]

    def as_json(self) -> dict[str, Any]:
        return {
            "customer": self.asked,
            "customer_key": self.key,
            "events": [
                {"at": _iso(event.at), "kind": event.kind, "message_id": event.message_id, **event.fields}
                for event in self.events
            ],
        }

    def text(self) -> str:
        messages = sum(event.kind in ("message", "survey") for event in self.events)
        head = f"customer {self.asked} (key {self.key}): {messages} message{'' if messages == 1 else 's'}"
        return "\n".join([head, *(event.line() for event in self.events)]) + "\n"


def customer_key(session: Session, asked: str, hashed: bool) -> str:
    """The key of the customer `asked` names: an id, an e-mail address, a phone number, or a key."""
    asked = asked.strip()
    plain = plain_identities(
        customer_id=asked,
        email=asked if "@" in asked else None,
        phone=asked if PHONE.fullmatch(asked) else None,
    )
    identities = [digest(item) for item in plain] if hashed else plain
    found = session.execute(
        select(CustomerIdentityRow.customer_key).where(CustomerIdentityRow.identity.in_(identities)).limit(1)
    ).scalar()
    if found:
        return found
    # a key as the report shows it, or a customer id on messages stored before customer keys
    row = session.execute(
        select(MessageRow.customer_key)
        .where(or_(MessageRow.customer_key == asked, MessageRow.customer_id == asked))
        .limit(1)
    ).first()
    if row is None:
        raise UnknownCustomer(f"no customer {asked!r} in the store (an id, e-mail address or phone number)")
    return row[0] or f"id:{asked}"


def timeline(session: Session, asked: str, keeps_text: bool) -> Timeline:
    key = customer_key(session, asked, hashed=not keeps_text)
    mine = MessageRow.customer_key == key
    if key.startswith("id:"):  # rows stored before customer keys: by their customer id
        mine = or_(mine, (MessageRow.customer_key.is_(None)) & (MessageRow.customer_id == key[3:]))
    rows = session.execute(select(MessageRow).where(mine)).scalars().all()
    ids = [row.id for row in rows]
    events = [_message(row, keeps_text) for row in rows]
    for result in session.execute(select(TriageRow).where(TriageRow.message_id.in_(ids))).scalars():
        events.append(_triage(result, keeps_text))
    alerts = select(DeliveryRow).where(
        DeliveryRow.message_id.in_(ids), DeliveryRow.receiver != RESULTS_RECEIVER
    )
    for delivery in session.execute(alerts).scalars():
        events.append(
            Event(
                _utc(delivery.sent_at or delivery.created_at),
                "alert",
                delivery.message_id,
                {"receiver": delivery.receiver, "status": delivery.status},
            )
        )
    for label in session.execute(select(LabelRow).where(LabelRow.message_id.in_(ids))).scalars():
        change = f"{label.field}: {label.model_value} → {label.team_value}"
        events.append(
            Event(
                _utc(label.labelled_at), "label", label.message_id, {"change": change, "source": label.source}
            )
        )
    events.sort(key=lambda event: (event.at, KINDS.index(event.kind), event.message_id))
    return Timeline(asked, key, events)


def _message(row: MessageRow, keeps_text: bool) -> Event:
    parsed = row.parsed or {}
    fields: dict[str, Any] = {"channel": row.channel, "conversation_id": row.conversation_id}
    kind = "message"
    if row.survey_type is not None and row.survey_score is not None:
        kind = "survey"
        survey = Survey(type=row.survey_type, score=row.survey_score)  # type: ignore[arg-type]
        fields["survey"] = f"{survey.type.upper()} {survey.score} ({band_name(survey)})"
    if keeps_text:
        text = " ".join(" ".join(filter(None, (parsed.get("subject"), parsed.get("body")))).split())
        fields["text"] = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
    return Event(_utc(row.created_at or row.received_at), kind, row.id, fields)


def _triage(result: TriageRow, keeps_text: bool) -> Event:
    fields: dict[str, Any] = {
        "urgency": result.urgency,
        "sentiment": result.sentiment,
        "category": result.category,
    }
    if keeps_text:
        fields["summary"] = result.summary
    return Event(_utc(result.triaged_at), "triage", result.message_id, fields)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
