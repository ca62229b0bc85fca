"""Helpdesk write-back through the Zendesk Support API: priority, tags and an internal note.

`PUT /api/v2/tickets/{id}.json` with basic auth `{email}/token:{api_token}`. The update is one request,
so it is applied whole or not at all. The internal note carries the delivery id, so a delivery that
may have gone out before a crash is looked up in the ticket's comments before it is sent again.

With `link_problem: true` on a grouped route, an incident with two or more tickets gets one Zendesk
*problem* ticket (`POST /api/v2/tickets.json`, created once: its `external_id` names the incident and is
looked up before a retry creates it), and every member ticket becomes one of its *incidents*
(`type: incident`, `problem_id`), so agents can solve them together.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.incident_view import build
from triage.routing.tree import HelpdeskReceiver
from triage.settings import HelpdeskSettings
from triage.store.feedback import FeedbackStore
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow, IncidentRow, ReceiptRow

MAX_WAIT_S = 30.0  # the longest Retry-After honoured inline; longer ones go back to the queue


class HelpdeskConfigError(Exception):
    """The helpdesk cannot be used as configured (bad URL, bad credentials); raised at start."""


def make_client(settings: HelpdeskSettings, timeout_s: float = 15.0) -> httpx.Client:
    return httpx.Client(
        base_url=settings.base_url.rstrip("/"),
        auth=(f"{settings.email}/token", settings.api_token),
        timeout=timeout_s,
        headers={"Accept": "application/json"},
    )


def check_credentials(client: httpx.Client) -> None:
    """GET /api/v2/users/me.json, so bad credentials stop the worker at start with one line."""
    try:
        response = client.get("/api/v2/users/me.json")
    except httpx.HTTPError as error:
        raise HelpdeskConfigError(f"cannot reach the helpdesk at {client.base_url}: {error}") from None
    if response.status_code in (401, 403):
        raise HelpdeskConfigError(
            f"the helpdesk at {client.base_url} rejected TRIAGE_HELPDESK__EMAIL / TRIAGE_HELPDESK__API_TOKEN "
            f"(HTTP {response.status_code})"
        )
    if response.status_code >= 400:
        raise HelpdeskConfigError(f"the helpdesk at {client.base_url} answered HTTP {response.status_code}")


def marker(delivery_id: int) -> str:
    return f"[triage delivery {delivery_id}]"


def ticket_update(case: dict[str, Any], config: HelpdeskReceiver, delivery_id: int) -> dict[str, Any]:
    ticket: dict[str, Any] = {
        "additional_tags": [
            *config.tags,
            f"triage_{case['urgency']}",
            f"sentiment_{case['sentiment']}",
            f"category_{case['category']}",
        ]
    }
    if config.set_priority:
        ticket["priority"] = case["urgency"]  # Zendesk's priorities are the same four words
    if config.internal_note:
        degraded = " (fallback model: the LLM was unavailable)" if case.get("degraded") else ""
        ticket["comment"] = {
            "public": False,
            "body": (
                f"Triage: {case['urgency']} urgency, {case['sentiment']} sentiment, {case['category']}.\n"
                f"Summary: {case['summary']}\n"
                f"Model: {case['model']}, confidence {case['confidence']:.0%}{degraded}\n"
                f"{marker(delivery_id)}"
            ),
        }
    return {"ticket": ticket}


class HelpdeskSender:
    batch_size = 1

    def __init__(
        self,
        client: httpx.Client,
        config: HelpdeskReceiver,
        incidents: Incidents,
        receipts: FeedbackStore | None = None,
    ) -> None:
        """`receipts`: where the tickets written to are recorded (what helpdesk corrections need)."""
        self.client = client
        self.config = config
        self.incidents = incidents
        self.receipts = receipts
        self.groups = config.link_problem  # grouped cases are linked to one problem ticket

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        return [self._send(delivery) for delivery in deliveries]

    def _send(self, delivery: DeliveryRow) -> Outcome | DeliveryFailed:
        ticket_id = delivery.payload.get("ticket_id")
        if ticket_id in (None, ""):
            return Outcome("skipped", "no ticket id")
        try:
            if (
                delivery.attempts > 1
                and self.config.internal_note
                and self._already_noted(ticket_id, delivery.id)
            ):
                self._receipt(delivery, ticket_id)
                return Outcome("sent", "found the note after a retry")
            body = ticket_update(delivery.payload, self.config, delivery.id)
            body["ticket"].update(self._problem_link(delivery))
            response = self._request("PUT", f"/api/v2/tickets/{ticket_id}.json", json=body)
        except httpx.HTTPError as error:
            return DeliveryFailed(f"helpdesk ticket {ticket_id}: {type(error).__name__}: {error}")
        if response.status_code < 300:
            self._receipt(delivery, ticket_id)
            return Outcome("sent", f"ticket {ticket_id} updated")
        if response.status_code == 404:
            return Outcome("skipped", f"ticket {ticket_id} not found")
        if response.status_code == 422:
            return Outcome("skipped", f"ticket {ticket_id} refused the update: {response.text[:200]}")
        return DeliveryFailed(
            f"helpdesk ticket {ticket_id}: HTTP {response.status_code}", retry_after_s=retry_after(response)
        )

    def _receipt(self, delivery: DeliveryRow, ticket_id: Any) -> None:
        """Triage wrote to this ticket: a later change to its priority or category tag is a correction."""
        if self.receipts is not None:
            self.receipts.record_receipt(
                ReceiptRow(
                    delivery_id=delivery.id,
                    message_id=delivery.message_id,
                    system="zendesk",
                    place=str(ticket_id),
                )
            )

    def _problem_link(self, delivery: DeliveryRow) -> dict[str, Any]:
        incident = self.incidents.get(delivery.incident_id) if delivery.incident_id is not None else None
        if incident is None or incident.problem_ticket_id is None:
            return {}
        return {"type": "incident", "problem_id": int(incident.problem_ticket_id)}

    def update_incident(self, incident: IncidentRow) -> int | DeliveryFailed:
        """Create the incident's problem ticket (once) and link every member ticket to it."""
        try:
            problem = incident.problem_ticket_id or self._problem_ticket(incident)
            if isinstance(problem, DeliveryFailed):
                return problem
            if incident.problem_ticket_id is None:
                self.incidents.problem_created(incident.id, problem)
            members = self.incidents.members(incident.id)
            link = {"ticket": {"type": "incident", "problem_id": int(problem)}}
            for ticket_id in dict.fromkeys(m.payload.get("ticket_id") for m in members):
                if ticket_id in (None, ""):
                    continue
                response = self._request("PUT", f"/api/v2/tickets/{ticket_id}.json", json=link)
                if response.status_code >= 300 and response.status_code not in (404, 422):
                    return DeliveryFailed(
                        f"linking ticket {ticket_id} to problem {problem}: HTTP {response.status_code}",
                        retry_after_s=retry_after(response),
                    )
        except httpx.HTTPError as error:
            return DeliveryFailed(f"helpdesk problem ticket: {type(error).__name__}: {error}")
        return incident.case_count

    def _problem_ticket(self, incident: IncidentRow) -> str | DeliveryFailed:
        """The problem ticket's id: found by its external id after an earlier try, else created."""
        external_id = f"triage-incident-{incident.uid}"
        if incident.update_attempts > 1:
            found = self._request("GET", "/api/v2/tickets.json", params={"external_id": external_id})
            if found.status_code < 300 and (tickets := found.json().get("tickets")):
                return str(tickets[0]["id"])
        view = build(incident, self.incidents.members(incident.id))
        excerpts = "\n".join(f"- {case.get('excerpt', '')[:300]}" for case in view.excerpts)
        body = {
            "ticket": {
                "subject": f"{view.count} customers report: {view.category} ({view.key})"[:200],
                "type": "problem",
                "priority": view.urgency,
                "external_id": external_id,
                "tags": [*self.config.tags, "triage_incident", f"category_{view.category}"],
                "comment": {
                    "public": False,
                    "body": (
                        f"Triage grouped {view.count} cases from {len(view.customers)} customers "
                        f"({view.first_at:%Y-%m-%d %H:%M} to {view.last_at:%H:%M} UTC) into this problem; "
                        f"their tickets are its incidents.\nExamples:\n{excerpts}"
                    ),
                },
            }
        }
        response = self._request("POST", "/api/v2/tickets.json", json=body)
        if response.status_code >= 300:
            return DeliveryFailed(
                f"creating the problem ticket: HTTP {response.status_code}",
                retry_after_s=retry_after(response),
            )
        return str(response.json()["ticket"]["id"])

    def _already_noted(self, ticket_id: Any, delivery_id: int) -> bool:
        response = self._request("GET", f"/api/v2/tickets/{ticket_id}/comments.json")
        if response.status_code >= 300:
            raise httpx.HTTPStatusError("comments lookup failed", request=response.request, response=response)
        return any(marker(delivery_id) in str(c.get("body", "")) for c in response.json().get("comments", []))

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, waiting out 429s (Retry-After) and retrying 5xx a few times."""
        for attempt in range(4):
            response = self.client.request(method, path, **kwargs)
            if response.status_code != 429 and response.status_code < 500:
                return response
            wait = retry_after(response) or 2.0**attempt
            if wait > MAX_WAIT_S or attempt == 3:
                return response
            time.sleep(wait)
        return response


def retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
