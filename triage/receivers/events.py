"""Receivers that speak in events about a case or an incident (PagerDuty, a signed webhook).

A case is one event, keyed by its message id. A grouped route's incident is one event too, keyed by the
incident's uid (incident mode `event`, triage/store/incidents.py): its first case triggers it, a more
urgent case re-triggers it (an escalation), cases that join meanwhile are sent as an update when the
group may have gone idle, and once it is idle (group_idle without a new case) it is resolved.

The keys are stable across restarts (never the delivery row's attempt): a resend after a crash or a
5xx carries the same key, which the service deduplicates on (PagerDuty's dedup_key, the webhook's
idempotency key), so a retry never opens a second incident.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.incident_view import IncidentView, build
from triage.receivers.layout import Alert, case_alert, incident_alert
from triage.store.incidents import Incidents, aware
from triage.store.tables import DeliveryRow, IncidentRow

Action = Literal["trigger", "acknowledge", "resolve"]
MAX_KEY = 255  # PagerDuty's longest dedup_key


def case_key(message_id: str) -> str:
    """The event key of one case: from its message id, so the same whatever the delivery's attempt."""
    key = f"triage/case/{message_id}"
    if len(key) <= MAX_KEY:
        return key
    return f"triage/case/sha256:{hashlib.sha256(message_id.encode()).hexdigest()}"


def incident_key(uid: str) -> str:
    return f"triage/incident/{uid}"


@dataclass(frozen=True)
class Event:
    action: Action
    key: str  # the case's or the incident's key (PagerDuty's dedup_key)
    idempotency_key: str  # this event: the same on a resend of it
    alert: Alert | None = None  # None for acknowledge
    case: dict[str, Any] | None = None  # a case's payload
    incident: IncidentView | None = None


class EventSender:
    """Turns deliveries and incident updates into events; a subclass sends them (`emit`)."""

    batch_size = 1  # one claim per event: a crash leaves at most one in doubt
    groups = True  # a grouped route's cases become one incident event

    def __init__(self, incidents: Incidents) -> None:
        self.incidents = incidents

    def emit(self, event: Event) -> Outcome | DeliveryFailed:
        raise NotImplementedError

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        return [self._send(delivery) for delivery in deliveries]

    def _send(self, delivery: DeliveryRow) -> Outcome | DeliveryFailed:
        case = delivery.payload
        if delivery.incident_id is None:
            idempotency = f"triage/delivery/{delivery.id}"
            return self.emit(
                Event("trigger", case_key(delivery.message_id), idempotency, case_alert(case), case)
            )
        incident = self.incidents.get(delivery.incident_id)
        assert incident is not None, f"delivery {delivery.id}: incident {delivery.incident_id} is gone"
        opening = delivery.incident_seq == 1
        if opening:  # from now on a more urgent case is an escalation
            incident = self.incidents.begin_alert(incident.id)
        view = build(incident, self.incidents.members(incident.id))
        if opening and view.count == 1:  # a group of one says what any case says
            alert = case_alert(case)
        else:
            alert = incident_alert(view, None if opening else case)
        key = incident_key(incident.uid)
        result = self.emit(Event("trigger", key, f"triage/delivery/{delivery.id}", alert, case, view))
        if opening and isinstance(result, Outcome) and result.status == "sent":
            self.incidents.event_sent(incident.id, view.count)
        return result

    def update_incident(self, incident: IncidentRow) -> int | DeliveryFailed:
        """Called when the incident may have gone idle: update its event with the cases that joined
        since it was last sent, and resolve it if it is idle. Returns how many cases it now counts."""
        view = build(incident, self.incidents.members(incident.id))
        key = incident_key(incident.uid)
        if view.count > incident.alerted_count:
            idempotency = f"{key}/update/{view.count}"
            update = self.emit(Event("trigger", key, idempotency, incident_alert(view), incident=view))
            if isinstance(update, DeliveryFailed):
                return update
        if aware(incident.closes_at) <= datetime.now(UTC):
            resolve = self.emit(Event("resolve", key, f"{key}/resolve", incident_alert(view), incident=view))
            if isinstance(resolve, DeliveryFailed):
                return resolve
            self.incidents.resolved(incident.id)
        return view.count
