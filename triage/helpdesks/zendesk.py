"""Zendesk Support API v2: priority, tags and an internal note in one ticket update; problem tickets.

`PUT /api/v2/tickets/{id}.json` with basic auth `{email}/token:{api_token}`: `priority` (Zendesk's four
are triage's four words), `additional_tags` (added, the agent's kept) and a `comment` with `public:
false`. The update is one request, so it is applied whole or not at all. The note's marker is looked up
in `GET /api/v2/tickets/{id}/comments.json`, every page (cursor pagination, `page[size]=100`, followed
through `links.next` while `meta.has_more`).

With `link_problem: true` on a grouped route, an incident with two or more tickets gets one *problem*
ticket (`POST /api/v2/tickets.json`, created once: its `external_id` names the incident and is looked
up before a retry creates it), and every member ticket becomes one of its *incidents* (`type:
incident`, `problem_id`), so agents can solve them together.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import httpx

from triage.helpdesks.base import TicketRefused, check, marker, note, request, tags
from triage.receivers.incident_view import build
from triage.routing.tree import HelpdeskReceiver
from triage.settings import HelpdeskSettings
from triage.store.tables import DeliveryRow, IncidentRow

COMMENTS_PAGE = 100


def make_client(settings: HelpdeskSettings, timeout_s: float = 15.0) -> httpx.Client:
    return httpx.Client(
        base_url=settings.base_url.rstrip("/"),
        auth=(f"{settings.email}/token", settings.api_token),
        timeout=timeout_s,
        headers={"Accept": "application/json"},
    )


class Zendesk:
    system = "zendesk"

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: HelpdeskSettings) -> Zendesk:
        return cls(make_client(settings))

    def check(self) -> None:
        check(
            self.client,
            "Zendesk",
            "/api/v2/users/me.json",
            "TRIAGE_HELPDESK__EMAIL / TRIAGE_HELPDESK__API_TOKEN",
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return request(self.client, "zendesk", method, path, **kwargs)

    def has_note(self, ticket_id: str, delivery_id: int) -> bool:
        wanted = marker(delivery_id)
        url: str | None = f"/api/v2/tickets/{ticket_id}/comments.json"
        params: dict[str, Any] | None = {"page[size]": COMMENTS_PAGE}
        while url:
            page = self._request("GET", url, params=params).json()
            if any(wanted in str(comment.get("body", "")) for comment in page.get("comments", [])):
                return True
            more = (page.get("meta") or {}).get("has_more")
            url, params = ((page.get("links") or {}).get("next") if more else None), None
        return False

    def write(
        self,
        ticket_id: str,
        case: dict[str, Any],
        config: HelpdeskReceiver,
        delivery_id: int,
        problem_id: str | None = None,
    ) -> None:
        ticket: dict[str, Any] = {"additional_tags": tags(case, config)}
        if config.set_priority:
            ticket["priority"] = case["urgency"]  # Zendesk's priorities are the same four words
        if config.internal_note:
            ticket["comment"] = {"public": False, "body": note(case, delivery_id)}
        if problem_id is not None:
            ticket.update(type="incident", problem_id=int(problem_id))
        self._request("PUT", f"/api/v2/tickets/{ticket_id}.json", json={"ticket": ticket})

    # --- problem tickets ------------------------------------------------------------------------

    def problem_ticket(
        self, incident: IncidentRow, members: list[DeliveryRow], config: HelpdeskReceiver
    ) -> str:
        """The incident's problem ticket id: found by its external id after an earlier try, else created."""
        external_id = f"triage-incident-{incident.uid}"
        if incident.update_attempts > 1:
            found = self._request("GET", "/api/v2/tickets.json", params={"external_id": external_id})
            if tickets := found.json().get("tickets"):
                return str(tickets[0]["id"])
        view = build(incident, members)
        excerpts = "\n".join(f"- {case.get('excerpt', '')[:300]}" for case in view.excerpts)
        body = {
            "ticket": {
                "subject": f"{view.count} customers report: {view.category} ({view.key})"[:200],
                "type": "problem",
                "priority": view.urgency,
                "external_id": external_id,
                "tags": [*config.tags, "triage_incident", f"category_{view.category}"],
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
        return str(response.json()["ticket"]["id"])

    def link(self, ticket_id: str, problem_id: str) -> None:
        """Make a ticket an incident of the problem; a ticket gone or refusing is left as it is."""
        link = {"ticket": {"type": "incident", "problem_id": int(problem_id)}}
        with suppress(TicketRefused):
            self._request("PUT", f"/api/v2/tickets/{ticket_id}.json", json=link)
