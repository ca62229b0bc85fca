"""SQLAlchemy tables: every message, its triage result, and the outbox of deliveries.

The schema is owned by the Alembic migrations in `migrations/`; these classes must match them
(tests/store/test_migrations.py checks that autogenerate finds nothing to change).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class MessageRow(Base):
    """One consumed, valid support message: the raw JSON as received and the parsed fields worth querying."""

    __tablename__ = "messages"
    __table_args__ = (
        # a customer's history (triage/history.py): their messages by time
        Index("ix_messages_customer_key_created_at", "customer_key", "created_at"),
        Index("ix_messages_survey_received", "survey_type", "received_at"),  # CX scores (report)
    )

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(256), index=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    customer_id: Mapped[str | None] = mapped_column(String(256), index=True)
    customer_tier: Mapped[str | None] = mapped_column(String(32))
    ticket_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    raw: Mapped[str] = mapped_column(Text)
    parsed: Mapped[dict[str, Any]] = mapped_column(JSON)
    kafka_topic: Mapped[str] = mapped_column(String(255))
    kafka_partition: Mapped[int] = mapped_column(Integer)
    kafka_offset: Mapped[int] = mapped_column(Integer)
    customer_key: Mapped[str | None] = mapped_column(String(300))  # triage/customers.py: one per person
    survey_type: Mapped[str | None] = mapped_column(String(8))  # csat | nps | ces (triage/message.py)
    survey_score: Mapped[int | None] = mapped_column(SmallInteger)


class TriageRow(Base):
    """The classifier's judgement of a message and the receivers the routing tree chose."""

    __tablename__ = "triage_results"

    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    urgency: Mapped[str] = mapped_column(String(16))
    sentiment: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    summary: Mapped[str] = mapped_column(String(256))
    confidence: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(128))
    decided_by: Mapped[str | None] = mapped_column(String(16), nullable=True)  # embedded | llm
    degraded: Mapped[bool] = mapped_column(default=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    receivers: Mapped[list[str]] = mapped_column(JSON)
    triaged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    customer_history: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # triage/history.py


class DeliveryRow(Base):
    """The outbox: one row per (message, receiver), written with the triage result, marked when sent."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "receiver", name="uq_deliveries_message_receiver"),
        Index("ix_deliveries_status_id", "status", "id"),
        Index("ix_deliveries_receiver_conversation", "receiver", "conversation_id", "status"),
        Index("ix_deliveries_receiver_status_created", "receiver", "status", "created_at"),  # the report
        Index("ix_deliveries_receiver_status_priority", "receiver", "status", "priority", "id"),  # claims
        Index("ix_deliveries_status_escalate_after", "status", "escalate_after_s"),  # escalations due
        Index("ix_deliveries_changed_at_id", "changed_at", "id"),  # the warehouse sync's cursor
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"))
    receiver: Mapped[str] = mapped_column(String(128))
    conversation_id: Mapped[str | None] = mapped_column(
        String(256)
    )  # alerts go out in order per conversation
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sending | sent | skipped
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # quiet hours
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)  # message.alert_priority: urgent first
    group_key: Mapped[str | None] = mapped_column(String(512))  # grouped by its route: joins an incident
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    incident_seq: Mapped[int | None] = mapped_column(Integer)  # its case number in the incident (1: first)
    escalate_to: Mapped[str | None] = mapped_column(String(128))  # the route's escalate.to (triage/oncall)
    escalate_after_s: Mapped[float | None] = mapped_column(Float)  # not taken this long after sent_at
    # set on every insert and update (status, attempts, ...): the warehouse sync sends rows changed since
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class IncidentRow(Base):
    """A group of cases for one receiver: one alert (posted after group_wait, updated at most once per
    group_interval), open until no case has joined for group_idle."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_receiver_key_closes", "receiver", "group_key", "closes_at"),
        Index("ix_incidents_changed_at_id", "changed_at", "id"),  # the warehouse sync's cursor
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)  # external references (a problem ticket)
    receiver: Mapped[str] = mapped_column(String(128))
    group_key: Mapped[str] = mapped_column(String(512))
    mode: Mapped[str] = mapped_column(String(16))  # alert (Slack) | link (helpdesk) | event (PagerDuty)
    first_case_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_case_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # last case + group_idle
    case_count: Mapped[int] = mapped_column(Integer, default=1)
    ticket_count: Mapped[int] = mapped_column(Integer, default=0)
    top_urgency: Mapped[str] = mapped_column(String(16))
    alerted_urgency: Mapped[str | None] = mapped_column(String(16))  # the highest posted so far
    alerted_count: Mapped[int] = mapped_column(Integer, default=0)  # cases counted by the posted alert
    interval_s: Mapped[float] = mapped_column(Float)
    opener_id: Mapped[int | None] = mapped_column(Integer)  # the delivery that posts the alert
    centroid: Mapped[list[float] | None] = mapped_column(JSON)  # mean embedding of the first cases
    centroid_n: Mapped[int] = mapped_column(Integer, default=0)
    slack_channel: Mapped[str | None] = mapped_column(String(128))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    problem_ticket_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_update_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    update_claimed_by: Mapped[str | None] = mapped_column(String(64))
    update_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    update_attempts: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # event mode: went idle
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SlackThreadRow(Base):
    """The Slack thread a conversation's alerts go to, per channel."""

    __tablename__ = "slack_threads"

    conversation_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    channel: Mapped[str] = mapped_column(String(128), primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String(32))
    top_urgency: Mapped[str] = mapped_column(String(16))  # the highest urgency alerted at the top level
    last_notified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeadLetterRow(Base):
    """The dead-letter ledger: each input record sent to the dead-letter topic, by its position.

    A record read again (after a crash, or by a second worker at a rebalance) finds its row and gets no
    second dead letter. The record itself is not kept here: the dead-letter topic has it."""

    __tablename__ = "dead_letters"

    kafka_topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    kafka_partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    kafka_offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="sending")  # sending | sent
    claimed_by: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class ReceiptRow(Base):
    """Where a delivery landed: the Slack message it posted (channel id, ts) or the helpdesk ticket it
    wrote to. A correction is matched to its case through these rows, never through what a click or an
    event claims about itself."""

    __tablename__ = "receipts"
    __table_args__ = (Index("ix_receipts_system_place", "system", "place", "created_at"),)

    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"))
    system: Mapped[str] = mapped_column(String(16))  # slack | zendesk | gorgias | kustomer | freshdesk
    place: Mapped[str] = mapped_column(String(128))  # a Slack channel id, or a ticket id
    ref: Mapped[str | None] = mapped_column(String(32))  # the Slack message's ts
    kind: Mapped[str | None] = mapped_column(String(16))  # the Slack alert's kind: new, follow_up, escalation
    link: Mapped[str | None] = mapped_column(Text)  # the thread link the alert shows (escalations)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LabelRow(Base):
    """A person's judgement of one field of a triaged message, from a Slack click or a helpdesk change:
    a correction (a value other than the model's) or a confirmation (the same value).

    `event_key` names the click or the change at its source, so a click delivered twice, or an event
    read twice, is stored once."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    field: Mapped[str] = mapped_column(String(16))  # urgency | sentiment | category
    model_value: Mapped[str] = mapped_column(String(64))
    team_value: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # slack | zendesk
    person_id: Mapped[str] = mapped_column(String(64))  # the Slack user id, or the Zendesk user id
    person_name: Mapped[str | None] = mapped_column(String(128))  # the Slack user name
    place: Mapped[str | None] = mapped_column(String(256))  # the channel and alert, or the ticket
    event_key: Mapped[str] = mapped_column(String(256), unique=True)
    labelled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class CursorRow(Base):
    """How far a reader of an outside event stream has got (the Zendesk ticket events' start_time)."""

    __tablename__ = "feedback_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IngestedRow(Base):
    """A message id `triage ingest` took in: claimed before it is produced, `produced_at` set once the
    broker acknowledged the record. A second webhook with the same id within the dedup window finds it
    and produces nothing."""

    __tablename__ = "ingested_messages"

    message_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    produced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AcknowledgementRow(Base):
    """Someone took a case or an incident ("I'm on it" in Slack, assigned in the helpdesk): stored once.

    `subject` is `message:<id>` or `incident:<id>`; a second take of the same subject changes nothing."""

    __tablename__ = "acknowledgements"

    subject: Mapped[str] = mapped_column(String(300), primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(256), index=True)
    incident_id: Mapped[int | None] = mapped_column(Integer, index=True)
    who: Mapped[str] = mapped_column(String(128))  # the Slack user's name (or id), the helpdesk agent's id
    how: Mapped[str] = mapped_column(String(16))  # slack | zendesk
    urgency: Mapped[str | None] = mapped_column(String(16))
    alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the first alert's sent_at
    acked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SilenceRow(Base):
    """Deliveries whose case matches every matcher, claimed between starts_at and ends_at, are not sent."""

    __tablename__ = "silences"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    matchers: Mapped[list[str]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EscalationRow(Base):
    """What became of a sent alert's escalation, decided once per alert (its delivery): `sent` (the
    outbox delivery `delivery_id` carries it), `cancelled` (taken in time) or `present` (the case had
    already gone to that receiver). The escalation's outbox row is unique per (message, receiver), and an
    incident's escalations all name its first case's message: one per incident."""

    __tablename__ = "escalations"

    source_delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))  # message:<id> or incident:<id>
    receiver: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CustomerIdentityRow(Base):
    """An identity a customer wrote with (`id:`, `email:`, `phone:`, or its `sha256:` digest when the
    store keeps no original text) and the customer key it belongs to: a message that carries only the
    e-mail finds the customer an earlier message linked to it (triage/store/customers.py)."""

    __tablename__ = "customer_identities"

    identity: Mapped[str] = mapped_column(String(300), primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(300), index=True)
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WarehouseCursorRow(Base):
    """How far `triage warehouse sync` has copied one table to one warehouse: the (time, key) of the last
    row sent, in the order the sync reads (messages by received_at, results by triaged_at, labels by
    stored_at, deliveries and incidents by changed_at). Retention deletes only rows at or before it."""

    __tablename__ = "warehouse_cursors"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(512), primary_key=True)  # its URL
    position_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    position_key: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
