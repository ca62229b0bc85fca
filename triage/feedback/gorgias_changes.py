"""Corrections from Gorgias: its ticket list ordered by `updated_datetime`, read with its cursor.

`GET /api/tickets?order_by=updated_datetime:asc&limit=100&cursor={cursor}`; the stored cursor is the
`meta.next_cursor` of the last full page (a page that is not full is read again at the next poll, with
what was updated since). Gorgias does not list who last changed a ticket, so a label's person is
"gorgias agent"; triage's own writes are its own judgement and never differ from it (see
ticket_changes.py).
"""

from __future__ import annotations

from typing import Any

from triage.feedback.ticket_changes import Page, TicketChanges, TicketState, parse_time
from triage.helpdesks.base import request
from triage.helpdesks.gorgias import PRIORITY

URGENCY = {priority: urgency for urgency, priority in PRIORITY.items()}


class GorgiasChanges(TicketChanges):
    system = "gorgias"

    def page(self, cursor: str | None) -> Page:
        params: dict[str, Any] = {"order_by": "updated_datetime:asc", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        body = request(self.client, "gorgias", "GET", "/api/tickets", params=params).json()
        following = (body.get("meta") or {}).get("next_cursor")
        tickets = [(self._state(ticket), cursor or "") for ticket in body.get("data", [])]
        if following and tickets:  # a full page: read on from the next one
            tickets[-1] = (tickets[-1][0], following)
        return Page(tickets, done=not following)

    def _state(self, ticket: dict[str, Any]) -> TicketState:
        return TicketState(
            ticket_id=str(ticket["id"]),
            updated_at=parse_time(ticket["updated_datetime"]),
            urgency=URGENCY.get(ticket.get("priority")),
            tags=tuple(tag["name"] for tag in ticket.get("tags") or ()),
            editor=None,
        )
