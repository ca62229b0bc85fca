"""Corrections from Kustomer: conversations updated since the cursor, found with its search API.

`POST /v1/customers/search` with `queryContext: conversation`, `conversation_updated_at` at or after
the cursor, sorted by it ascending (`pageSize=100`); the cursor is the `updatedAt` of the last
conversation read. A conversation's tags are tag ids: their names come from `GET /v1/tags/{id}` (kept).
Its `modifiedBy` names who changed it last: triage's own API user (`GET /v1/users/current`) is never
a correction; priority 1, which triage leaves to the team, is not read as an urgency.
"""

from __future__ import annotations

from typing import Any

from triage.feedback.ticket_changes import Page, TicketChanges, TicketState, first_look, parse_time
from triage.helpdesks.base import request
from triage.helpdesks.kustomer import PRIORITY

URGENCY = {number: urgency for urgency, number in PRIORITY.items()}


class KustomerChanges(TicketChanges):
    system = "kustomer"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.tag_names: dict[str, str] = {}  # tag id -> name, read once

    def _get(self, path: str) -> dict[str, Any]:
        return request(self.client, "kustomer", "GET", path).json()["data"]

    def page(self, cursor: str | None) -> Page:
        if self.me is None:
            self.me = str(self._get("/v1/users/current")["id"])
        query = {
            "and": [{"conversation_updated_at": {"gte": cursor or first_look()}}],
            "sort": [{"conversation_updated_at": "asc"}],
            "queryContext": "conversation",
        }
        body = request(
            self.client, "kustomer", "POST", "/v1/customers/search", params={"pageSize": 100}, json=query
        ).json()
        tickets = [(self._state(item), str(item["attributes"]["updatedAt"])) for item in body.get("data", [])]
        return Page(tickets, done=not (body.get("links") or {}).get("next"))

    def _tag(self, tag_id: str) -> str:
        if tag_id not in self.tag_names:
            self.tag_names[tag_id] = str(self._get(f"/v1/tags/{tag_id}")["attributes"]["name"])
        return self.tag_names[tag_id]

    def _state(self, conversation: dict[str, Any]) -> TicketState:
        attributes = conversation["attributes"]
        editor = attributes.get("modifiedBy")
        return TicketState(
            ticket_id=str(conversation["id"]),
            updated_at=parse_time(attributes["updatedAt"]),
            urgency=URGENCY.get(attributes.get("priority")),
            tags=tuple(self._tag(str(t)) for t in attributes.get("tags") or ()),
            editor=str(editor) if editor else None,
        )
