"""A signed JSON webhook, shaped like Alertmanager's: any system can take our cases and incidents.

`POST <url>` with the body below and two headers, so the receiving system can check it came from us:
`X-Triage-Timestamp` (Unix seconds) and `X-Triage-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>" with the secret>` (the secret from the environment variable the routing file
names). The timestamp is signed too, so a captured request cannot be replayed later as new.

A case is one `firing` event; a grouped route's incident is one event keyed by the incident, updated as
cases join and `resolved` when it goes idle (triage/receivers/events.py). Every body and the
`Idempotency-Key` header carry a key that is the same on a resend of the same event (after a crash, a
5xx or a timeout), so the receiving system can drop the second copy; `groupKey` stays the same for a
case or an incident across all its events.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import httpx

from triage.receivers import posting
from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.events import Event, EventSender
from triage.receivers.layout import Alert
from triage.store.incidents import Incidents

VERSION = "1"
LABELS = (
    "message_id",
    "conversation_id",
    "urgency",
    "sentiment",
    "category",
    "language",
    "channel",
    "customer_id",
    "customer_tier",
    "ticket_id",
)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def body(receiver: str, event: Event) -> dict[str, Any]:
    status = "resolved" if event.action == "resolve" else "firing"
    alert = event.alert
    document: dict[str, Any] = {
        "version": VERSION,
        "idempotencyKey": event.idempotency_key,
        "groupKey": event.key,
        "kind": "incident" if event.incident is not None else "case",
        "status": status,
        "receiver": receiver,
        "matchers": list(alert.matchers) if alert else [],
        "alert": _alert(alert) if alert else None,
        "links": [{"href": link.url, "text": link.label} for link in alert.links] if alert else [],
    }
    if event.incident is not None:
        view = event.incident
        document["incident"] = {
            "id": view.incident_id,
            "cases": view.count,
            "customers": len(view.customers),
            "tiers": view.tiers,
            "firstCaseAt": view.first_at.isoformat(),
            "latestCaseAt": view.last_at.isoformat(),
            "groupedBy": view.key,
        }
        cases = view.excerpts
    else:
        cases = [event.case] if event.case else []
    document["alerts"] = [_case(case, status) for case in cases]
    return document


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "headline": alert.headline,
        "urgency": alert.urgency,
        "category": alert.category,
        "summary": alert.summary,
        "facts": alert.facts,
        "why": alert.why,
        "cases": [{"who": who, "excerpt": excerpt} for who, excerpt in alert.cases],
    }


def _case(case: dict[str, Any], status: str) -> dict[str, Any]:
    """One case as Alertmanager shows an alert: labels to match on, annotations to read (redacted)."""
    return {
        "status": status,
        "labels": {name: case.get(name) for name in LABELS if case.get(name) is not None},
        "annotations": {
            name: case.get(name)
            for name in ("summary", "subject", "excerpt", "customer_name")
            if case.get(name) is not None
        },
        "startsAt": case.get("created_at") or case.get("triaged_at"),
        "route": case.get("route"),
    }


class WebhookSender(EventSender):
    def __init__(
        self, client: httpx.Client, receiver: str, url: str, secret: str, incidents: Incidents
    ) -> None:
        super().__init__(incidents)
        self.client = client
        self.receiver = receiver
        self.url = url
        self.secret = secret

    def emit(self, event: Event) -> Outcome | DeliveryFailed:
        raw = posting.json_bytes(body(self.receiver, event))
        timestamp = str(int(time.time()))
        headers = {
            "X-Triage-Timestamp": timestamp,
            "X-Triage-Signature": signature(self.secret, timestamp, raw),
            "Idempotency-Key": event.idempotency_key,
        }
        answer = posting.post(self.client, self.url, f"webhook {self.receiver}", raw, headers)
        return posting.outcome(answer, f"webhook {self.receiver}", f"webhook {event.idempotency_key}")
