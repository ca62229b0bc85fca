"""Gorgias REST API: priority, tags and an internal note on a ticket.

Basic auth `{email}:{api_key}` against `https://{domain}.gorgias.com`. Three calls, the note last:
`PUT /api/tickets/{id}` with `priority` (low, normal, high, critical), `POST /api/tickets/{id}/tags` with
`names` (adds; the ticket's other tags stay), and `POST /api/tickets/{id}/messages` with `channel:
internal-note`, `from_agent: true` and the API user (`GET /api/users/0`, the current user) as sender.
The note's marker is looked up in `GET /api/messages?ticket_id={id}` (the per-ticket list is
deprecated), every page, oldest first (cursor pagination: `limit`, `cursor` = the last page's
`meta.next_cursor`).
"""

from __future__ import annotations

import html
from typing import Any

import httpx

from triage.helpdesks.base import check, marker, note, request, tags
from triage.routing.tree import HelpdeskReceiver
from triage.settings import GorgiasSettings

PRIORITY = {"low": "low", "normal": "normal", "high": "high", "urgent": "critical"}
PAGE = 100


class Gorgias:
    system = "gorgias"

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.me: int | None = None  # the API user: the note's sender

    @classmethod
    def from_settings(cls, settings: GorgiasSettings, timeout_s: float = 15.0) -> Gorgias:
        return cls(
            httpx.Client(
                base_url=settings.base_url.rstrip("/"),
                auth=(settings.email, settings.api_key),
                timeout=timeout_s,
                headers={"Accept": "application/json"},
            )
        )

    def check(self) -> None:
        settings = "TRIAGE_GORGIAS__EMAIL / TRIAGE_GORGIAS__API_KEY"
        user = check(self.client, "Gorgias", "/api/users/0", settings)
        self.me = user.json().get("id")

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return request(self.client, "gorgias", method, path, **kwargs)

    def has_note(self, ticket_id: str, delivery_id: int) -> bool:
        wanted = marker(delivery_id)
        params: dict[str, Any] = {"ticket_id": ticket_id, "limit": PAGE, "order_by": "created_datetime:asc"}
        while True:
            page = self._request("GET", "/api/messages", params=params).json()
            for message in page.get("data", []):
                if wanted in f"{message.get('body_text') or ''} {message.get('body_html') or ''}":
                    return True
            cursor = (page.get("meta") or {}).get("next_cursor")
            if not cursor:
                return False
            params = {**params, "cursor": cursor}

    def write(self, ticket_id: str, case: dict[str, Any], config: HelpdeskReceiver, delivery_id: int) -> None:
        if config.set_priority:
            self._request("PUT", f"/api/tickets/{ticket_id}", json={"priority": PRIORITY[case["urgency"]]})
        self._request("POST", f"/api/tickets/{ticket_id}/tags", json={"names": tags(case, config)})
        if config.internal_note:
            if self.me is None:
                self.me = self._request("GET", "/api/users/0").json().get("id")
            text = note(case, delivery_id)
            message = {
                "channel": "internal-note",
                "via": "api",
                "from_agent": True,
                "sender": {"id": self.me},
                "body_text": text,
                "body_html": html.escape(text).replace("\n", "<br>"),
            }
            self._request("POST", f"/api/tickets/{ticket_id}/messages", json=message)
