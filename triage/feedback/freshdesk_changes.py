"""Corrections from Freshdesk: the tickets updated since the cursor, oldest first.

`GET /api/v2/tickets?updated_since={cursor}&order_by=updated_at&order_type=asc&per_page=100`; the
cursor is the `updated_at` of the last ticket read. Freshdesk does not say who last changed a ticket, so
a label's person is "freshdesk agent"; triage's own writes are its own judgement and never differ from
it (see ticket_changes.py).
"""

from __future__ import annotations

from typing import Any

from triage.feedback.ticket_changes import Page, TicketChanges, TicketState, first_look, parse_time
from triage.helpdesks.base import request
from triage.helpdesks.freshdesk import PRIORITY

URGENCY = {number: urgency for urgency, number in PRIORITY.items()}


class FreshdeskChanges(TicketChanges):
    system = "freshdesk"

    def page(self, cursor: str | None) -> Page:
        params = {
            "updated_since": cursor or first_look(),
            "order_by": "updated_at",
            "order_type": "asc",
            "per_page": 100,
        }
        response = request(self.client, "freshdesk", "GET", "/api/v2/tickets", params=params)
        tickets = [(self._state(ticket), str(ticket["updated_at"])) for ticket in response.json()]
        return Page(tickets, done="next" not in response.links)

    def _state(self, ticket: dict[str, Any]) -> TicketState:
        return TicketState(
            ticket_id=str(ticket["id"]),
            updated_at=parse_time(ticket["updated_at"]),
            urgency=URGENCY.get(ticket.get("priority")),
            tags=tuple(ticket.get("tags") or ()),
            editor=None,
        )
