"""Freshdesk API v2: priority, tags and a private note on a ticket.

Basic auth `{api_key}:X` against `https://{domain}.freshdesk.com`. A ticket update replaces its tag
list, so the tags are read, merged and written: `GET /api/v2/tickets/{id}`, then `PUT
/api/v2/tickets/{id}` with `priority` (1 low, 2 medium, 3 high, 4 urgent) and the ticket's tags plus
triage's; then `POST /api/v2/tickets/{id}/notes` with `private: true`. The note's marker is looked up in
`GET /api/v2/tickets/{id}/conversations`, every page (`page`, `per_page=100`, followed while the `Link`
header has `rel="next"`).
"""

from __future__ import annotations

import html
from typing import Any

import httpx

from triage.helpdesks.base import check, marker, note, request, tags
from triage.routing.tree import HelpdeskReceiver
from triage.settings import FreshdeskSettings

PRIORITY = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
PAGE = 100


class Freshdesk:
    system = "freshdesk"

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: FreshdeskSettings, timeout_s: float = 15.0) -> Freshdesk:
        return cls(
            httpx.Client(
                base_url=settings.base_url.rstrip("/"),
                auth=(settings.api_key, "X"),
                timeout=timeout_s,
                headers={"Accept": "application/json"},
            )
        )

    def check(self) -> None:
        check(self.client, "Freshdesk", "/api/v2/agents/me", "TRIAGE_FRESHDESK__API_KEY")

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return request(self.client, "freshdesk", method, path, **kwargs)

    def has_note(self, ticket_id: str, delivery_id: int) -> bool:
        wanted = marker(delivery_id)
        url: str | None = f"/api/v2/tickets/{ticket_id}/conversations"
        params: dict[str, Any] | None = {"page": 1, "per_page": PAGE}
        while url:
            response = self._request("GET", url, params=params)
            for item in response.json():
                if wanted in str(item.get("body_text") or "") or wanted in str(item.get("body") or ""):
                    return True
            url, params = response.links.get("next", {}).get("url"), None
        return False

    def write(self, ticket_id: str, case: dict[str, Any], config: HelpdeskReceiver, delivery_id: int) -> None:
        path = f"/api/v2/tickets/{ticket_id}"
        current = self._request("GET", path).json().get("tags") or []
        update: dict[str, Any] = {"tags": list(dict.fromkeys([*current, *tags(case, config)]))}
        if config.set_priority:
            update["priority"] = PRIORITY[case["urgency"]]
        self._request("PUT", path, json=update)
        if config.internal_note:
            body = html.escape(note(case, delivery_id)).replace("\n", "<br>")
            self._request("POST", f"{path}/notes", json={"body": body, "private": True})
