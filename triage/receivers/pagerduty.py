"""PagerDuty through the Events API v2: `POST /v2/enqueue` with a routing key, answered 202.

- `trigger` with a `dedup_key` per case (`triage/case/<message id>`) or per incident
  (`triage/incident/<uid>`, see triage/receivers/events.py): PagerDuty keeps one open alert per key,
  so a resend after a crash, a 5xx or a timeout adds to that alert and never opens a second one.
- `resolve` when a grouped incident goes idle (group_idle without a new case); `acknowledge` and
  `resolve` for a case from outside the outbox (someone took it in Slack, its ticket was solved)
  through `follow_up()`.
- 429 (PagerDuty's rate limit per routing key) and 5xx go back to the outbox, after Retry-After when
  given, else its back-off; a 400 (an event PagerDuty refuses) is skipped with PagerDuty's reason.
- The routing key comes from the environment variable the routing file names; PagerDuty has no
  read-only call to check it with, so a missing variable is said at start and the receiver skips.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
from sqlalchemy import select

from triage.receivers import posting
from triage.receivers.base import DeliveryFailed, Outcome, Sender
from triage.receivers.events import Action, Event, EventSender, case_key, incident_key
from triage.store import Store
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow, IncidentRow

SEVERITY = {"urgent": "critical", "high": "error", "normal": "warning", "low": "info"}
SUMMARY_CHARS = 1024  # PagerDuty's limit for payload.summary


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

    def acknowledge(self, key: str) -> Outcome | DeliveryFailed:
        return self.emit(Event("acknowledge", key, f"{key}/acknowledge"))

    def resolve(self, key: str) -> Outcome | DeliveryFailed:
        return self.emit(Event("resolve", key, f"{key}/resolve"))


def follow_up(
    store: Store, senders: dict[str, Sender], message_id: str, action: Action
) -> list[Outcome | DeliveryFailed]:
    """Acknowledge (someone took the case) or resolve (its ticket was solved) every PagerDuty alert the
    case raised: its own dedup_key, or its incident's. Both are idempotent on PagerDuty's side, so the
    caller may call again after a failure or a crash. `senders`: the worker's (Receivers.senders)."""
    results: list[Outcome | DeliveryFailed] = []
    for receiver, key in raised_keys(store, message_id):
        sender = senders.get(receiver)
        if isinstance(sender, PagerDutySender):
            results.append(sender.acknowledge(key) if action == "acknowledge" else sender.resolve(key))
    return results


def raised_keys(store: Store, message_id: str) -> Iterable[tuple[str, str]]:
    """(receiver, dedup_key) of the case's sent or grouped deliveries."""
    with store.session(read_only=True) as session:
        rows = session.execute(
            select(DeliveryRow.receiver, DeliveryRow.incident_id, IncidentRow.uid)
            .outerjoin(IncidentRow, IncidentRow.id == DeliveryRow.incident_id)
            .where((DeliveryRow.message_id == message_id) & DeliveryRow.status.in_(("sent", "grouped")))
        ).all()
    return [(receiver, incident_key(uid) if uid else case_key(message_id)) for receiver, _, uid in rows]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
