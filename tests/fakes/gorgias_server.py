"""A local server speaking the Gorgias REST API's wire format: the current user (`GET /api/users/0`),
tickets (`GET`/`PUT /api/tickets/{id}`, priority low/normal/high/critical), ticket tags (`POST` adds by
`names` or `ids`, `PUT` replaces), a ticket's new message (`POST /api/tickets/{id}/messages`, with
`channel: internal-note` for a note), the message list (`GET /api/messages?ticket_id=`, cursor
pagination: `limit` at most 100, `cursor`, `meta.next_cursor`, `order_by` `created_datetime:desc` by
default or `:asc`; the per-ticket `GET /api/tickets/{id}/messages` is deprecated and not served), and
the ticket list ordered by `updated_datetime` (cursor-paged), what the corrections reader polls.

Auth is HTTP Basic `email:api_key`. Writes are what `fail_next` scripts and `rate_limit_per_s` limits
(429 with `Retry-After`, as Gorgias's leaky bucket answers).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import Any, ClassVar

from tests.fakes.helpdesk_base import FakeHelpdesk, Json, basic_credentials
from tests.fakes.local_server import Answer

API_USER = 11
PRIORITIES = {"low", "normal", "high", "critical"}
TICKET = re.compile(r"^/api/tickets/(\d+)(/tags|/messages)?$")
MAX_LIMIT = 100


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


def cursor_of(offset: int) -> str:
    return base64.urlsafe_b64encode(f'["next", {offset}]'.encode()).decode()


def offset_of(cursor: str | None) -> int | None:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor).decode().strip("[]").split(",")[1])
    except (binascii.Error, ValueError, IndexError, UnicodeDecodeError):
        return None


class FakeGorgias(FakeHelpdesk):
    error_429: ClassVar[Json] = {"error": {"msg": "Too many requests, please retry later"}}

    def __init__(self, email: str = "bot@example.com", api_key: str = "gorgias-test-key") -> None:
        super().__init__()
        self.email = email
        self.api_key = api_key
        self._tag_ids: dict[str, int] = {}

    def env(self) -> dict[str, str]:
        return {
            "TRIAGE_GORGIAS__BASE_URL": self.address,
            "TRIAGE_GORGIAS__EMAIL": self.email,
            "TRIAGE_GORGIAS__API_KEY": self.api_key,
        }

    def authorized(self, headers: dict[str, str]) -> bool:
        return basic_credentials(headers) == f"{self.email}:{self.api_key}"

    def new_ticket(self, ticket_id: str) -> Json:
        return {
            "id": int(ticket_id),
            "subject": f"Ticket {ticket_id}",
            "status": "open",
            "channel": "email",
            "priority": "normal",
            "tags": [],
            "created_datetime": now_iso(),
            "updated_datetime": now_iso(),
        }

    def tag_names(self, ticket_id: Any) -> list[str]:
        return [tag["name"] for tag in self.tickets[str(ticket_id)]["tags"]]

    def internal_notes(self, ticket_id: Any) -> list[Json]:
        return [m for m in self.notes.get(str(ticket_id), []) if m["channel"] == "internal-note"]

    def _tag(self, name: str) -> Json:
        tag_id = self._tag_ids.setdefault(name, len(self._tag_ids) + 1)
        return {"id": tag_id, "name": name, "decoration": None}

    def route(self, method: str, path: str, query: Json, body: Any) -> Answer:
        if method == "GET" and path == "/api/users/0":
            user = {"id": API_USER, "email": self.email, "firstname": "Triage", "role": {"name": "agent"}}
            return 200, {}, user
        if method == "GET" and path == "/api/tickets":
            return self._list_tickets(query)
        if method == "GET" and path == "/api/messages":
            return self._list_messages(query)
        match = TICKET.match(path)
        if not match:
            return 404, {}, {"error": {"msg": "Resource not found"}}
        found = self.ticket_or_error(match[1])
        if isinstance(found, tuple):
            return found
        ticket, part = found, match[2]
        if part is None and method == "GET":
            return 200, {}, ticket
        if part is None and method == "PUT":
            return self._update(ticket, body or {}, by=API_USER)
        if part == "/tags" and method in ("POST", "PUT"):
            return self._set_tags(ticket, body or {}, replace=method == "PUT", by=API_USER)
        if part == "/messages" and method == "POST":
            return self._message(match[1], body or {})
        return 405, {}, {"error": {"msg": "Method not allowed"}}

    def _update(self, ticket: Json, body: Json, by: int) -> Answer:
        priority = body.get("priority", ticket["priority"])
        if priority not in PRIORITIES:
            return 400, {}, {"error": {"msg": "Invalid data", "data": {"priority": ["Not a valid choice."]}}}
        ticket["priority"] = priority
        self._changed(ticket, by)
        return 200, {}, ticket

    def _set_tags(self, ticket: Json, body: Json, replace: bool, by: int) -> Answer:
        names = body.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return 400, {}, {"error": {"msg": "Invalid data", "data": {"names": ["Not a valid list."]}}}
        current = [] if replace else [t["name"] for t in ticket["tags"]]
        ticket["tags"] = [self._tag(name) for name in dict.fromkeys([*current, *names])]
        self._changed(ticket, by)
        return 201 if not replace else 200, {}, {"data": ticket["tags"]}

    def _message(self, ticket_id: str, body: Json) -> Answer:
        missing = [k for k in ("channel", "via", "from_agent", "sender") if k not in body]
        if missing or not (body.get("body_text") or body.get("body_html")):
            errors = {k: ["Missing data."] for k in missing or ["body_text"]}
            return 400, {}, {"error": {"msg": "Invalid data", "data": errors}}
        message = {
            "id": self.next_id(),
            "ticket_id": int(ticket_id),
            "channel": body["channel"],
            "via": body["via"],
            "from_agent": body["from_agent"],
            "public": body["channel"] != "internal-note",
            "sender": body["sender"],
            "body_text": body.get("body_text"),
            "body_html": body.get("body_html"),
            "created_datetime": now_iso(),
        }
        self.notes[ticket_id].append(message)
        return 201, {}, message

    def _list_messages(self, query: Json) -> Answer:
        order = query.get("order_by", "created_datetime:desc")
        if order not in ("created_datetime:asc", "created_datetime:desc"):
            return 400, {}, {"error": {"msg": "Invalid data", "data": {"order_by": ["Not a valid choice."]}}}
        ticket_id = query.get("ticket_id")
        if ticket_id is None:
            found = [m for messages in self.notes.values() for m in messages]
        else:
            ticket = self.ticket_or_error(ticket_id)
            if isinstance(ticket, tuple):
                return ticket
            found = list(self.notes[ticket_id])
        ordered = found if order.endswith(":asc") else found[::-1]  # kept in the order they were sent
        return self._page(ordered, query, "/api/messages")

    def _page(self, items: list[Json], query: Json, uri: str) -> Answer:
        offset = offset_of(query.get("cursor"))
        try:
            limit = int(query.get("limit", 30))
        except ValueError:
            limit = -1
        if offset is None or not 1 <= limit <= MAX_LIMIT:
            return 400, {}, {"error": {"msg": "Invalid cursor or limit"}}
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        meta = {"prev_cursor": cursor_of(max(0, offset - limit)) if offset else None}
        meta["next_cursor"] = cursor_of(offset + limit) if more else None
        return 200, {}, {"object": "list", "uri": uri, "data": page, "meta": meta}

    def _list_tickets(self, query: Json) -> Answer:
        """Tickets by update time; the cursor is a key (time, id), so a ticket updated again moves to
        the end and nothing after the cursor is skipped."""
        if query.get("order_by") != "updated_datetime:asc":
            return 400, {}, {"error": {"msg": "this stand-in lists by order_by=updated_datetime:asc only"}}
        limit = int(query.get("limit", 30))
        ordered = sorted(self.tickets.values(), key=lambda t: (t["updated_datetime"], t["id"]))
        if query.get("cursor"):
            try:
                after = json.loads(base64.urlsafe_b64decode(query["cursor"]))
            except (binascii.Error, ValueError):
                return 400, {}, {"error": {"msg": "Invalid cursor"}}
            ordered = [t for t in ordered if [t["updated_datetime"], t["id"]] > after]
        page = ordered[:limit]
        more = len(ordered) > limit
        last = [page[-1]["updated_datetime"], page[-1]["id"]] if page else None
        following = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if more else None
        meta = {"prev_cursor": None, "next_cursor": following}
        return 200, {}, {"object": "list", "uri": "/api/tickets", "data": page, "meta": meta}

    def _changed(self, ticket: Json, by: int) -> None:
        ticket["updated_datetime"] = time.strftime(
            "%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(self.clock())
        )
        ticket["last_updated_by"] = by  # the stand-in's record of who changed it (not in Gorgias's API)

    def seed_messages(self, ticket_id: int, count: int) -> None:
        """A ticket with a long history: `count` messages from the customer and agents."""
        with self._lock:
            self.ticket(str(ticket_id))
            for n in range(count):
                self.notes[str(ticket_id)].append(
                    {"id": self.next_id(), "channel": "email", "public": True, "body_text": f"message {n}"}
                )

    def agent_change(
        self, ticket_id: int, agent: int = 7, priority: str | None = None, add_tags: tuple[str, ...] = ()
    ) -> None:
        """An agent changes the ticket in Gorgias's helpdesk."""
        with self._lock:
            ticket = self.ticket(str(ticket_id))
            assert ticket is not None
            if priority is not None:
                self._update(ticket, {"priority": priority}, by=agent)
            if add_tags:
                self._set_tags(ticket, {"names": list(add_tags)}, replace=False, by=agent)
