"""Kustomer API: priority, tags and a note on a conversation (a `ticket.id` is a conversation id).

`Authorization: Bearer {api_key}` against `https://{org}.api.kustomerapp.com`. Three calls, the note
last: `PUT /v1/conversations/{id}` with `priority` (1 to 5; triage uses 2 to 5 and leaves 1 to the
team), `POST /v1/conversations/{id}/tags` with a bare JSON array of tag names (appends, creating a
tag that does not exist; the conversation's other tags stay), and `POST /v1/conversations/{id}/notes`
with the note's `body`. The note's marker is looked up in `GET /v1/conversations/{id}/notes`, every
page (`page`, `pageSize`, followed through `links.next` until it is null).
"""

from __future__ import annotations

from typing import Any

import httpx

from triage.helpdesks.base import check, marker, note, request, tags
from triage.routing.tree import HelpdeskReceiver
from triage.settings import KustomerSettings

PRIORITY = {"low": 2, "normal": 3, "high": 4, "urgent": 5}
PAGE = 100


class Kustomer:
    system = "kustomer"

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: KustomerSettings, timeout_s: float = 15.0) -> Kustomer:
        return cls(
            httpx.Client(
                base_url=settings.base_url.rstrip("/"),
                headers={"Accept": "application/json", "Authorization": f"Bearer {settings.api_key}"},
                timeout=timeout_s,
            )
        )

    def check(self) -> None:
        check(self.client, "Kustomer", "/v1/users/current", "TRIAGE_KUSTOMER__API_KEY")

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return request(self.client, "kustomer", method, path, **kwargs)

    def has_note(self, ticket_id: str, delivery_id: int) -> bool:
        wanted = marker(delivery_id)
        url: str | None = f"/v1/conversations/{ticket_id}/notes"
        params: dict[str, Any] | None = {"page": 1, "pageSize": PAGE}
        while url:
            page = self._request("GET", url, params=params).json()
            for item in page.get("data", []):
                if wanted in str((item.get("attributes") or {}).get("body", "")):
                    return True
            url, params = (page.get("links") or {}).get("next"), None
        return False

    def write(self, ticket_id: str, case: dict[str, Any], config: HelpdeskReceiver, delivery_id: int) -> None:
        path = f"/v1/conversations/{ticket_id}"
        if config.set_priority:
            self._request("PUT", path, json={"priority": PRIORITY[case["urgency"]]})
        self._request("POST", f"{path}/tags", json=tags(case, config))
        if config.internal_note:
            self._request("POST", f"{path}/notes", json={"body": note(case, delivery_id)})
