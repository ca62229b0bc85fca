"""A local server speaking PagerDuty's Events API v2 (`POST /v2/enqueue`), keeping alerts by dedup_key.

As PagerDuty: the body is `{routing_key, event_action, dedup_key, payload, links, client}`; a trigger
needs `payload.summary` (at most 1024 characters), `payload.source` and `payload.severity` (critical,
error, warning, info); an unknown routing key or a bad event is `400 {"status": "invalid event",
"message": ..., "errors": [...]}`; an accepted one is `202 {"status": "success", "message": "Event
processed", "dedup_key": ...}`. A trigger whose dedup_key names an open (triggered or acknowledged)
alert is added to it; otherwise it opens a new one. acknowledge and resolve change the open alert's
state (and do nothing when there is none). `fail_next(429, retry_after=...)` scripts rate limits;
`hold_answers_s` keeps each answer back that long after the event is applied (a sender killed then
has its event in doubt: PagerDuty has it, the sender never heard).
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes.local_server import Answer, LocalJSONServer

SEVERITIES = {"critical", "error", "warning", "info"}
ACTIONS = {"trigger", "acknowledge", "resolve"}


class FakePagerDuty(LocalJSONServer):
    def __init__(self, routing_key: str = "R0UTINGKEY0000000000000000000001") -> None:
        super().__init__()
        self.routing_keys = {routing_key}
        self.alerts: list[dict[str, Any]] = []  # every alert opened: dedup_key, status, events
        self.events: list[dict[str, Any]] = []  # every accepted event, in order
        self.hold_answers_s = 0.0

    @property
    def events_url(self) -> str:
        return f"{self.address}/v2/enqueue"

    def open_alert(self, dedup_key: str) -> dict[str, Any] | None:
        return next(
            (a for a in reversed(self.alerts) if a["dedup_key"] == dedup_key and a["status"] != "resolved"),
            None,
        )

    def alerts_for(self, dedup_key: str) -> list[dict[str, Any]]:
        return [alert for alert in self.alerts if alert["dedup_key"] == dedup_key]

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        if (method, path) != ("POST", "/v2/enqueue"):
            return 404, {}, {"status": "not found"}
        with self._lock:
            failure = self._scripted_failure()
            if failure:
                status, extra = failure
                return status, extra, {"status": "throttle event" if status == 429 else "error"}
            try:
                event = json.loads(raw)
            except ValueError:
                return invalid(["body is not JSON"])
            errors = problems(event, self.routing_keys)
            if errors:
                return invalid(errors)
            self._apply(event)
        if self.hold_answers_s:
            time.sleep(self.hold_answers_s)
        return 202, {}, {"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}

    def _apply(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        key, action = event["dedup_key"], event["event_action"]
        alert = self.open_alert(key)
        if action == "trigger":
            if alert is None:
                alert = {"dedup_key": key, "status": "triggered", "events": []}
                self.alerts.append(alert)
            alert["events"].append(event)
            alert["summary"] = event["payload"]["summary"]
            alert["severity"] = event["payload"]["severity"]
        elif alert is not None:
            alert["status"] = "acknowledged" if action == "acknowledge" else "resolved"
            alert["events"].append(event)


def problems(event: Any, routing_keys: set[str]) -> list[str]:
    if not isinstance(event, dict):
        return ["event must be an object"]
    errors = []
    if event.get("routing_key") not in routing_keys:
        errors.append("Invalid routing key")
    if event.get("event_action") not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    key = event.get("dedup_key")
    if not isinstance(key, str) or not key or len(key) > 255:
        errors.append("'dedup_key' must be a string of 1 to 255 characters")
    if event.get("event_action") == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing or not an object"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary or len(summary) > 1024:
            errors.append("'payload.summary' must be 1 to 1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            errors.append("'payload.source' is missing")
        if payload.get("severity") not in SEVERITIES:
            errors.append("'payload.severity' is invalid (must be one of critical, error, warning, info)")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            errors.append("'payload.custom_details' must be an object")
    return errors


def invalid(errors: list[str]) -> Answer:
    return 400, {}, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
