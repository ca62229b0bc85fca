"""PagerDuty through the Events API v2: `POST /v2/enqueue` with a routing key, answered 202.

- `trigger` with a `dedup_key` per case (`triage/case/<message id>`) or per incident
  (`triage/incident/<uid>`, see triage/receivers/events.py): PagerDuty keeps one open alert per key,
  so a resend after a crash, a 5xx or a timeout adds to that alert and never opens a second one.
- `resolve` when a grouped incident goes idle (group_idle without a new case); `acknowledge` and
  `resolve` for a case (someone took it in Slack, its ticket was solved): `follow_up()` queues them in
  the outbox, as deliveries to `<receiver>:acknowledge` / `<receiver>:resolve`, sent after the trigger.
- 429 (PagerDuty's rate limit per routing key) and 5xx go back to the outbox, after Retry-After when
  given, else its back-off; a 400 (an event PagerDuty refuses) is skipped with PagerDuty's reason.
- The routing key comes from the environment variable the routing file names; PagerDuty has no
  read-only call to check it with, so a missing variable is said at start and the receiver skips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from triage.receivers import posting
from triage.receivers.base import DeliveryFailed, Outcome, Sender
from triage.receivers.events import Action, Event, EventSender, case_key, incident_key
from triage.routing import RoutingTree
from triage.store import Store
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow, IncidentRow

SEVERITY = {"urgent": "critical", "high": "error", "normal": "warning", "low": "info"}
SUMMARY_CHARS = 1024  # PagerDuty's limit for payload.summary
FOLLOW_UPS: tuple[Action, ...] = ("acknowledge", "resolve")
TRIGGER_WAIT_S = 5.0


def event_body(routing_key: str, event: Event) -> dict[str, Any]:
    """The Events API v2 body: acknowledge and resolve name the key; a trigger says what happened."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": event.action,
        "dedup_key": event.key,
    }
    if event.action != "trigger" or event.alert is None:
        return body
    alert = event.alert
    details: dict[str, Any] = {**alert.facts}
    if alert.summary:
        details["Summary"] = alert.summary
    if alert.subject:
        details["Subject"] = alert.subject
    if alert.excerpt:
        details["Message"] = alert.excerpt
    if alert.cases:
        details["Cases"] = [f"{who}: {excerpt}" for who, excerpt in alert.cases]
    if alert.why:
        details["Why"] = alert.why
    details["Small print"] = " · ".join(alert.small_print)
    body["payload"] = {
        "summary": _clip(alert.text, SUMMARY_CHARS),
        "source": "triage",
        "severity": SEVERITY.get(alert.urgency, "warning"),
        "component": alert.category,
        "group": "customer support",
        "class": alert.category,
        "custom_details": details,
    }
    body["client"] = "triage"
    if alert.links:
        body["links"] = [{"href": link.url, "text": link.label} for link in alert.links]
    return body


class PagerDutySender(EventSender):
    def __init__(self, client: httpx.Client, events_url: str, routing_key: str, incidents: Incidents) -> None:
        super().__init__(incidents)
        self.client = client
        self.events_url = events_url
        self.routing_key = routing_key

    def emit(self, event: Event) -> Outcome | DeliveryFailed:
        body = posting.json_bytes(event_body(self.routing_key, event))
        answer = posting.post(self.client, self.events_url, "PagerDuty", body)
        return posting.outcome(answer, "PagerDuty", f"PagerDuty {event.action} {event.key}")


def follow_up(store: Store, tree: RoutingTree, message_id: str, action: Action) -> int:
    """Queue an `acknowledge` (someone took the case) for every PagerDuty alert the case raised (its own
    dedup_key, or its incident's), or a `resolve` (its ticket was solved) for its own; returns how many.

    Each is a delivery in the outbox to `<receiver>:<action>`, unique per message like every delivery:
    queued once however often this is called (two workers, a retried click), and sent with the outbox's
    retries, back-off and Retry-After. Both actions are idempotent at PagerDuty, so a resend after a
    crash is harmless."""
    paging = [name for name, receiver in tree.receivers.items() if receiver.pagerduty is not None]
    queued = 0
    for row, uid in raised(store, message_id, paging):
        if action == "resolve" and uid:
            continue  # an incident's alert resolves when it goes idle, not with one of its tickets
        key = incident_key(uid) if uid else case_key(message_id)
        follow = DeliveryRow(
            message_id=message_id,
            conversation_id=row.conversation_id,
            receiver=follow_up_receiver(row.receiver, action),
            payload={"action": action, "dedup_key": key, "of_delivery": row.id},
            priority=row.priority,
        )
        try:
            with store.session() as session:
                session.add(follow)
            queued += 1
        except IntegrityError:
            queued += 1  # queued before (by another worker, or an earlier call)
    return queued


def raised(store: Store, message_id: str, receivers: Sequence[str]) -> list[tuple[DeliveryRow, str | None]]:
    """The case's deliveries to those receivers (not skipped), with their incident's uid if grouped."""
    with store.session(read_only=True) as session:
        rows = session.execute(
            select(DeliveryRow, IncidentRow.uid)
            .outerjoin(IncidentRow, IncidentRow.id == DeliveryRow.incident_id)
            .where(
                (DeliveryRow.message_id == message_id)
                & DeliveryRow.receiver.in_(list(receivers))
                & (DeliveryRow.status != "skipped")
            )
        ).all()
        session.expunge_all()
    return [(row, uid) for row, uid in rows]


def follow_up_receiver(receiver: str, action: str) -> str:
    """`pager:acknowledge`: a name the routing file cannot give a receiver (`:` is not allowed there)."""
    return f"{receiver}:{action}"


def follow_up_senders(name: str, sender: Sender, store: Store) -> dict[str, Sender]:
    """The follow-up receivers of a PagerDuty receiver (none for any other kind)."""
    if not isinstance(sender, PagerDutySender):
        return {}
    return {follow_up_receiver(name, action): FollowUpSender(sender, action, store) for action in FOLLOW_UPS}


class FollowUpSender:
    """Sends queued acknowledges or resolves, once their alert's trigger has gone out."""

    batch_size = 1

    def __init__(self, pagerduty: PagerDutySender, action: Action, store: Store) -> None:
        self.pagerduty = pagerduty
        self.action = action
        self.store = store

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        return [self._send(delivery) for delivery in deliveries]

    def _send(self, delivery: DeliveryRow) -> Outcome | DeliveryFailed:
        with self.store.session(read_only=True) as session:
            trigger = session.get(DeliveryRow, delivery.payload["of_delivery"])
            waiting = trigger is not None and trigger.status in ("pending", "sending")
        if waiting:  # an acknowledge before its trigger would be lost: PagerDuty has no alert yet
            return DeliveryFailed("its trigger is not sent yet", retry_after_s=TRIGGER_WAIT_S)
        key = delivery.payload["dedup_key"]
        return self.pagerduty.emit(Event(self.action, key, f"{key}/{self.action}"))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
