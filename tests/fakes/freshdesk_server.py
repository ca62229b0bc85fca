"""A local server speaking the Freshdesk API v2's wire format: the current agent (`GET
/api/v2/agents/me`), tickets (`GET`/`PUT /api/v2/tickets/{id}`; priority 1-4; `tags` on an update
REPLACE the ticket's tags, as Freshdesk does), notes (`POST /api/v2/tickets/{id}/notes`, private by
default), conversations (`GET /api/v2/tickets/{id}/conversations`, paged by `page` and `per_page` at
most 100, the next page in the `Link` header), and the ticket list filtered by `updated_since`, ordered
by `updated_at` (what the corrections reader polls).

Auth is HTTP Basic `api_key:X`. Writes are what `fail_next` scripts and `rate_limit_per_s` limits (429
with `Retry-After`, as Freshdesk's per-minute limit answers).
"""

from __future__ import annotations

import html
import re
import time
from typing import Any, ClassVar

from tests.fakes.helpdesk_base import FakeHelpdesk, Json, basic_credentials
from tests.fakes.local_server import Answer

API_AGENT = 9001
TICKET = re.compile(r"^/api/v2/tickets/(\d+)(/notes|/conversations)?$")
MAX_PER_PAGE = 100


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class FakeFreshdesk(FakeHelpdesk):
    error_429: ClassVar[Json] = {
        "code": "rate_limit_exceeded",
        "message": "You have exceeded the limit of requests per minute",
    }

    def __init__(self, api_key: str = "freshdesk-test-key") -> None:
        super().__init__()
        self.api_key = api_key

    def env(self) -> dict[str, str]:
        return {"TRIAGE_FRESHDESK__BASE_URL": self.address, "TRIAGE_FRESHDESK__API_KEY": self.api_key}

    def authorized(self, headers: dict[str, str]) -> bool:
        return basic_credentials(headers) == f"{self.api_key}:X"

    def new_ticket(self, ticket_id: str) -> Json:
        now = iso(self.clock())
        return {
            "id": int(ticket_id),
            "subject": f"Ticket {ticket_id}",
            "status": 2,
            "priority": 1,
            "tags": [],
            "created_at": now,
            "updated_at": now,
        }

    def route(self, method: str, path: str, query: Json, body: Any) -> Answer:
        if method == "GET" and path == "/api/v2/agents/me":
            return 200, {}, {"id": API_AGENT, "contact": {"name": "Triage", "email": "bot@example.com"}}
        if method == "GET" and path == "/api/v2/tickets":
            return self._list(query)
        match = TICKET.match(path)
        if not match:
            return 404, {}, {"code": "invalid_url", "message": "The URL is not valid"}
        found = self.ticket_or_error(match[1])
        if isinstance(found, tuple):
            status, headers, _ = found
            if status == 403:
                return (
                    403,
                    headers,
                    {"code": "access_denied", "message": "You are not authorized to perform this action."},
                )
            return 404, headers, {}
        ticket, part = found, match[2]
        if part is None and method == "GET":
            return 200, {}, ticket
        if part is None and method == "PUT":
            return self._update(ticket, body or {}, by=API_AGENT)
        if part == "/notes" and method == "POST":
            return self._note(match[1], body or {})
        if part == "/conversations" and method == "GET":
            items = self.notes[match[1]]
            return self._paged(items, query, f"/api/v2/tickets/{match[1]}/conversations")
        return 405, {}, {"code": "method_not_allowed", "message": "Method not allowed"}

    def _invalid(self, field: str, message: str) -> Answer:
        errors = [{"field": field, "message": message, "code": "invalid_value"}]
        return 400, {}, {"description": "Validation failed", "errors": errors}

    def _update(self, ticket: Json, body: Json, by: int) -> Answer:
        priority = body.get("priority", ticket["priority"])
        if priority not in (1, 2, 3, 4):
            return self._invalid("priority", "It should be one of these values: '1,2,3,4'")
        tags = body.get("tags", ticket["tags"])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return self._invalid("tags", "It should be an array of strings")
        ticket.update(priority=priority, tags=list(tags), updated_at=iso(self.clock()))
        ticket["last_updated_by"] = by  # the stand-in's record of who changed it (not in Freshdesk's API)
        return 200, {}, ticket

    def _note(self, ticket_id: str, body: Json) -> Answer:
        if not isinstance(body.get("body"), str) or not body["body"]:
            return self._invalid("body", "It should be a/an String")
        note = {
            "id": self.next_id(),
            "ticket_id": int(ticket_id),
            "user_id": API_AGENT,
            "body": body["body"],
            "body_text": html.unescape(re.sub(r"<[^>]+>", " ", body["body"])),
            "private": body.get("private", True),
            "incoming": False,
            "source": 2,
            "created_at": iso(self.clock()),
        }
        self.notes[ticket_id].append(note)
        return 201, {}, note

    def _paged(self, items: list[Json], query: Json, path: str, extra: str = "") -> Answer:
        try:
            page, per_page = int(query.get("page", 1)), int(query.get("per_page", 30))
        except ValueError:
            return self._invalid("page", "It should be a/an Positive Integer")
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            return self._invalid(
                "per_page", f"It should be a Positive Integer less than or equal to {MAX_PER_PAGE}"
            )
        start = (page - 1) * per_page
        headers = {}
        if start + per_page < len(items):
            headers["Link"] = f'<{self.address}{path}?{extra}page={page + 1}&per_page={per_page}>; rel="next"'
        return 200, headers, items[start : start + per_page]

    def _list(self, query: Json) -> Answer:
        since = query.get("updated_since", "")
        found = [t for t in self.tickets.values() if t["updated_at"] >= since]
        ordered = sorted(found, key=lambda t: (t["updated_at"], t["id"]))
        if query.get("order_by", "created_at") != "updated_at" or query.get("order_type", "desc") != "asc":
            return self._invalid("order_by", "this stand-in lists by order_by=updated_at&order_type=asc only")
        extra = f"updated_since={since}&order_by=updated_at&order_type=asc&"
        return self._paged(ordered, query, "/api/v2/tickets", extra)

    def seed_conversations(self, ticket_id: int, count: int) -> None:
        """A ticket with a long history: `count` replies and notes before triage's."""
        with self._lock:
            self.ticket(str(ticket_id))
            for n in range(count):
                self.notes[str(ticket_id)].append(
                    {
                        "id": self.next_id(),
                        "body": f"<div>reply {n}</div>",
                        "body_text": f"reply {n}",
                        "private": False,
                    }
                )

    def agent_change(
        self, ticket_id: int, agent: int = 7, priority: int | None = None, add_tags: tuple[str, ...] = ()
    ) -> None:
        """An agent changes the ticket in Freshdesk's helpdesk."""
        with self._lock:
            ticket = self.ticket(str(ticket_id))
            assert ticket is not None
            changes: Json = {"tags": [*ticket["tags"], *add_tags]}
            if priority is not None:
                changes["priority"] = priority
            self._update(ticket, changes, by=agent)
