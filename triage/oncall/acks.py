"""Taking a case or an incident: "I'm on it" in Slack, or an agent assigned to the ticket in Zendesk.

`take()` is the one place a take is recorded; whatever else should hear of it (PagerDuty's acknowledge)
is called from there, after the first take only.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from triage.ops import metrics
from triage.routing import RESULTS_RECEIVER
from triage.store import Store
from triage.store.tables import AcknowledgementRow, DeliveryRow, IncidentRow, MessageRow, TriageRow

log = logging.getLogger(__name__)
# What else hears of a first take (the worker: PagerDuty's acknowledge), per store: the Slack clicks and
# the helpdesk's events share the worker's Store, and a listener ends with its store.
_listeners: weakref.WeakKeyDictionary[Store, Callable[[Target], None]] = weakref.WeakKeyDictionary()


def on_first_take(store: Store, listener: Callable[[Target], None]) -> None:
    _listeners[store] = listener


@dataclass(frozen=True)
class Target:
    """What is taken: one case (its message) or one incident."""

    message_id: str | None = None
    incident_id: int | None = None

    @property
    def subject(self) -> str:
        return (
            f"incident:{self.incident_id}" if self.incident_id is not None else f"message:{self.message_id}"
        )

    @classmethod
    def parse(cls, subject: str) -> Target:
        kind, _, ref = subject.partition(":")
        return cls(incident_id=int(ref)) if kind == "incident" else cls(message_id=ref)


def target_of(delivery: DeliveryRow) -> Target:
    """What an alert asks someone to take: its incident, the case, or what an escalation escalates."""
    escalated = (delivery.payload or {}).get("escalated") or {}
    if escalated.get("subject"):
        return Target.parse(str(escalated["subject"]))
    if delivery.incident_id is not None and delivery.receiver != RESULTS_RECEIVER:
        return Target(incident_id=delivery.incident_id)
    return Target(message_id=delivery.message_id)


def take(store: Store, target: Target, who: str, how: str, at: datetime | None = None) -> bool:
    """Record that `who` took `target` (`how`: slack, zendesk). True the first time; a later take of
    the same case or incident (another click, the helpdesk assignment after the click) changes nothing."""
    at = at or datetime.now(UTC)
    with store.session() as session:
        alerted_at, urgency = _alerted(session, target)
        module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        inserted = session.execute(
            module.insert(AcknowledgementRow)
            .values(
                subject=target.subject,
                message_id=target.message_id,
                incident_id=target.incident_id,
                who=who[:128],
                how=how,
                urgency=urgency,
                alerted_at=alerted_at,
                acked_at=at,
            )
            .on_conflict_do_nothing()
            .returning(AcknowledgementRow.subject)
        ).first()
    if inserted is None:
        return False
    metrics.ACKNOWLEDGED.labels(how).inc()
    if alerted_at is not None:
        waited = (at - _aware(alerted_at)).total_seconds()
        metrics.TIME_TO_ACKNOWLEDGE.labels(urgency or "unknown").observe(max(0.0, waited))
    log.info("%s taken by %s (%s)", target.subject, who, how)
    listener = _listeners.get(store)
    if listener is not None:
        try:
            listener(target)
        except Exception:  # the take is stored; a failed follow-up must not undo the click's answer
            log.exception("after %s was taken", target.subject)
    return True


def first_case(store: Store, incident_id: int | None) -> str | None:
    """The message of an incident's first case (its PagerDuty alert is keyed by the incident)."""
    if incident_id is None:
        return None
    with store.session(read_only=True) as session:
        return session.scalars(
            select(DeliveryRow.message_id)
            .where(DeliveryRow.incident_id == incident_id)
            .order_by(DeliveryRow.id)
        ).first()


def alerted_cases(store: Store, ticket_id: str, at: datetime) -> list[str]:
    """The message ids of the ticket's cases alerted (sent to a receiver) by `at`."""
    query = (
        select(MessageRow.id)
        .join(DeliveryRow, DeliveryRow.message_id == MessageRow.id)
        .where(
            (MessageRow.ticket_id == ticket_id)
            & (DeliveryRow.receiver != RESULTS_RECEIVER)
            & (DeliveryRow.status == "sent")
            & (DeliveryRow.sent_at <= at)
        )
        .distinct()
    )
    with store.session(read_only=True) as session:
        return list(session.scalars(query))


def take_ticket(store: Store, ticket_id: str, who: str, how: str, at: datetime) -> int:
    """An agent assigned to a helpdesk ticket takes the ticket's cases alerted by then; returns how many
    were taken for the first time."""
    cases = alerted_cases(store, ticket_id, at)
    return sum(take(store, Target(message_id=message_id), who, how, at) for message_id in cases)


def acknowledgement(store: Store, target: Target) -> AcknowledgementRow | None:
    with store.session(read_only=True) as session:
        return session.get(AcknowledgementRow, target.subject)


def _alerted(session, target: Target) -> tuple[datetime | None, str | None]:
    """When the target's first alert went out, and its urgency."""
    if target.incident_id is not None:
        incident = session.get(IncidentRow, target.incident_id)
        if incident is None:
            return None, None
        sent = session.scalar(select(DeliveryRow.sent_at).where(DeliveryRow.id == incident.opener_id))
        return sent, incident.top_urgency
    sent = session.scalar(
        select(func.min(DeliveryRow.sent_at)).where(
            (DeliveryRow.message_id == target.message_id)
            & (DeliveryRow.receiver != RESULTS_RECEIVER)
            & (DeliveryRow.status == "sent")
        )
    )
    urgency = session.scalar(select(TriageRow.urgency).where(TriageRow.message_id == target.message_id))
    return (_aware(sent) if isinstance(sent, datetime) else _parse(sent)), urgency


def _parse(value: object) -> datetime | None:
    return _aware(datetime.fromisoformat(value)) if isinstance(value, str) else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
