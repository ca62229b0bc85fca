"""A local server speaking the Zendesk Support API v2 wire format (tickets, comments, users/me; ticket
creation and the list filtered by external_id; problem and incident tickets; the incremental ticket
events export).

Auth is HTTP Basic with `{email}/token:{api_token}`, as Zendesk's API-token scheme. Ticket updates
(`PUT /api/v2/tickets/{id}.json`) are the calls that `fail_next` scripts and `rate_limit_per_s` limits.

Every ticket update is also an audit event in `events`, as Zendesk keeps them: the API user's (id
`API_USER`, what users/me says) and an agent's (`agent_change`, through the web form), with child
events for a priority change (`priority`, `previous_value`), tag changes (`tags`, `added_tags`,
`removed_tags`) and a comment. `GET /api/v2/incremental/ticket_events.json?start_time=T` pages them
(`page_size` per page, never splitting a second) with `end_time`, `next_page` and `end_of_stream`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.local_server import Answer, LocalJSONServer

Json = dict[str, Any]
PRIORITIES = {None, "low", "normal", "high", "urgent"}
TICKET = re.compile(r"^/api/v2/tickets/(\d+)(/comments)?\.json$")
TICKET_EVENTS = "/api/v2/incremental/ticket_events.json"
API_USER = 1  # the user the API token belongs to (users/me)
FAILURES = {429: "APIRateLimitExceeded", 503: "ServiceUnavailable"}


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeZendesk(LocalJSONServer):
    def __init__(self, email: str = "agent@example.com", api_token: str = "zd-test-token") -> None:
        super().__init__()
        self.email = email
        self.api_token = api_token
        self.tickets: dict[int, Json] = {}
        self.comments: dict[int, list[Json]] = {}  # ticket id -> [{id, body, public, ...}]
        self.requests: list[Json] = []  # method, path, json, headers
        self.strict_ids = False  # True: an unknown ticket id is 404 instead of created on first use
        self.forbidden: set[int] = set()  # tickets the API user may not see or update: 403
        self.rate_limit_per_s: float | None = None  # at least this many seconds between ticket updates
        self._last_update: float | None = None
        self._next_comment_id = 1000
        self.events: list[Json] = []  # audit events, oldest first
        self.page_size = 1000  # events per page of the incremental export (Zendesk's)
        self.fail_events: list[tuple[int, int | None]] = []  # (status, Retry-After) for the next exports
        self.clock = time.time  # when events happen (a test may move it on)
        self._next_event_id = 5_000_000

    @property
    def base_url(self) -> str:
        return self.address

    def env(self) -> dict[str, str]:
        """The TRIAGE_ settings that point a worker at this stand-in, with its credentials."""
        return {
            "TRIAGE_HELPDESK__BASE_URL": self.base_url,
            "TRIAGE_HELPDESK__EMAIL": self.email,
            "TRIAGE_HELPDESK__API_TOKEN": self.api_token,
        }

    def authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and decoded == f"{self.email}/token:{self.api_token}"

    def handle(
        self, method: str, path: str, body: Json | None, headers: dict[str, str], query: Json | None = None
    ) -> Answer:
        with self._lock:
            self.requests.append(
                {"method": method, "path": path, "json": body, "headers": headers, "query": query or {}}
            )
            auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            if not self.authorized(auth):
                return 401, {}, {"error": "Couldn't authenticate you"}
            if method == "GET" and path == "/api/v2/users/me.json":
                return (
                    200,
                    {},
                    {"user": {"id": API_USER, "email": self.email, "name": "Test Agent", "role": "agent"}},
                )
            if method == "GET" and path == TICKET_EVENTS:
                return self._ticket_events(query or {})
            if path == "/api/v2/tickets.json":
                if method == "POST":
                    return self._create(body)
                if method == "GET":
                    wanted = (query or {}).get("external_id")
                    found = [
                        t for t in self.tickets.values() if wanted is None or t.get("external_id") == wanted
                    ]
                    return 200, {}, {"tickets": found, "count": len(found), "next_page": None}
            match = TICKET.match(path)
            if not match or method not in ("GET", "PUT") or (method == "PUT" and match[2]):
                return 404, {}, {"error": "InvalidEndpoint", "description": "Not found"}
            ticket_id = int(match[1])
            if ticket_id in self.forbidden:
                return 403, {}, {"error": "Forbidden", "description": "You do not have access to this page."}
            if method == "PUT":
                return self._update(ticket_id, body)
            ticket = self._ticket(ticket_id)
            if ticket is None:
                return 404, {}, {"error": "RecordNotFound", "description": "Not found"}
            if match[2]:
                return self._comments(ticket_id, query or {})
            return 200, {}, {"ticket": ticket}

    def _comments(self, ticket_id: int, query: Json) -> Answer:
        """A page of comments: cursor pagination (`page[size]` at most 100, `page[after]`), or the first
        100 with `next_page` when no cursor is asked for (offset pagination)."""
        comments = self.comments.get(ticket_id, [])
        path = f"{self.address}/api/v2/tickets/{ticket_id}/comments.json"
        if "page[size]" not in query:
            more = len(comments) > 100
            return (
                200,
                {},
                {
                    "comments": comments[:100],
                    "next_page": f"{path}?page=2" if more else None,
                    "previous_page": None,
                    "count": len(comments),
                },
            )
        try:
            size = int(query["page[size]"])
            start = int(query.get("page[after]", "0") or 0)
        except ValueError:
            return 400, {}, {"error": "InvalidPaginationParameter", "description": "page[size] is a number"}
        if not 1 <= size <= 100:
            return 400, {}, {"error": "InvalidPaginationParameter", "description": "page[size] is 1 to 100"}
        page = comments[start : start + size]
        more = start + size < len(comments)
        after = str(start + size) if more else None
        return (
            200,
            {},
            {
                "comments": page,
                "meta": {"has_more": more, "after_cursor": after, "before_cursor": str(start)},
                "links": {
                    "next": f"{path}?page%5Bsize%5D={size}&page%5Bafter%5D={after}" if more else None,
                    "prev": None,
                },
            },
        )

    def seed_comments(self, ticket_id: int, count: int) -> None:
        """A ticket with a long history: `count` public comments before triage's."""
        with self._lock:
            self._ticket(ticket_id)
            for n in range(count):
                self._next_comment_id += 1
                self.comments.setdefault(ticket_id, []).append(
                    {
                        "id": self._next_comment_id,
                        "type": "Comment",
                        "author_id": 7,
                        "body": f"reply {n}",
                        "public": True,
                    }
                )

    def _ticket(self, ticket_id: int) -> Json | None:
        if ticket_id not in self.tickets and not self.strict_ids:
            self.tickets[ticket_id] = {
                "id": ticket_id,
                "subject": f"Ticket {ticket_id}",
                "status": "open",
                "priority": None,
                "tags": [],
                "updated_at": now_iso(),
            }
        return self.tickets.get(ticket_id)

    def _create(self, body: Json | None) -> Answer:
        fields = (body or {}).get("ticket")
        if not isinstance(fields, dict) or not fields.get("comment"):
            return 422, {}, {"error": "RecordInvalid", "description": "a ticket needs a comment"}
        if problem := self._type_problem(fields):
            return problem
        ticket_id = max([*self.tickets, 100_000]) + 1
        ticket = {
            "id": ticket_id,
            "subject": fields.get("subject", ""),
            "status": "new",
            "priority": fields.get("priority"),
            "type": fields.get("type"),
            "problem_id": fields.get("problem_id"),
            "external_id": fields.get("external_id"),
            "tags": list(fields.get("tags", [])),
            "updated_at": now_iso(),
        }
        self.tickets[ticket_id] = ticket
        comment = fields["comment"]
        self._next_comment_id += 1
        self.comments[ticket_id] = [
            {
                "id": self._next_comment_id,
                "type": "Comment",
                "author_id": 1,
                "created_at": now_iso(),
                "body": comment.get("body", ""),
                "public": comment.get("public", True),
            }
        ]
        return 201, {}, {"ticket": ticket}

    def _type_problem(self, fields: Json) -> Answer | None:
        """As Zendesk: an incident's problem_id must name a problem ticket."""
        if fields.get("type") not in (None, "problem", "incident", "question", "task"):
            return 422, {}, {"error": "RecordInvalid", "description": f"Type: {fields['type']} is not valid"}
        if fields.get("type") == "incident" and fields.get("problem_id") is not None:
            problem = self.tickets.get(int(fields["problem_id"]))
            if problem is None or problem.get("type") != "problem":
                return 422, {}, {"error": "RecordInvalid", "description": "Problem: is not a problem ticket"}
        return None

    def _update(self, ticket_id: int, body: Json | None) -> Answer:
        failure = self._scripted_failure()
        if failure:
            status, headers = failure
            return status, headers, {"error": FAILURES.get(status, "InternalError")}
        now = time.monotonic()
        if self.rate_limit_per_s and self._last_update is not None:
            wait = self.rate_limit_per_s - (now - self._last_update)
            if wait > 0:
                self.rejected_429 += 1
                return 429, {"Retry-After": str(max(1, math.ceil(wait)))}, {"error": "APIRateLimitExceeded"}
        changes = (body or {}).get("ticket")
        if not isinstance(changes, dict):
            return 400, {}, {"error": "InvalidValue", "description": "ticket parameter is missing"}
        ticket = self._ticket(ticket_id)
        if ticket is None:
            return 404, {}, {"error": "RecordNotFound", "description": "Not found"}
        if problem := self._type_problem(changes):
            return problem
        if changes.get("priority") not in PRIORITIES:
            details = {"priority": [{"description": f"Priority: {changes['priority']} is not valid"}]}
            return (
                422,
                {},
                {"error": "RecordInvalid", "description": "Record validation errors", "details": details},
            )
        self._last_update = now
        comment = changes.get("comment")
        self._apply(ticket, changes, updater=API_USER, via="API")
        if comment:
            self._next_comment_id += 1
            self.comments.setdefault(ticket_id, []).append(
                {
                    "id": self._next_comment_id,
                    "type": "Comment",
                    "author_id": 1,
                    "created_at": now_iso(),
                    "body": comment.get("body") or comment.get("html_body", ""),
                    "public": comment.get("public", True),
                }
            )
        return 200, {}, {"ticket": ticket}

    def _apply(self, ticket: Json, changes: Json, updater: int, via: str) -> None:
        """Change a ticket's fields and tags, and keep the change as an audit event."""
        before = {
            "priority": ticket.get("priority"),
            "tags": list(ticket["tags"]),
            "assignee": ticket.get("assignee_id"),
            "status": ticket.get("status"),
        }
        for key, value in changes.items():
            if key not in {"id", "comment", "tags", "additional_tags", "remove_tags"}:
                ticket[key] = value
        tags = list(changes["tags"]) if "tags" in changes else list(ticket["tags"])
        tags += [t for t in changes.get("additional_tags", []) if t not in tags]
        ticket["tags"] = [t for t in dict.fromkeys(tags) if t not in changes.get("remove_tags", [])]
        ticket["updated_at"] = now_iso()
        children: list[Json] = []
        if ticket.get("priority") != before["priority"]:
            children.append({"priority": ticket["priority"], "previous_value": before["priority"]})
        if ticket.get("assignee_id") != before["assignee"]:
            children.append({"assignee_id": ticket["assignee_id"], "previous_value": before["assignee"]})
        if ticket.get("status") != before["status"]:
            children.append({"status": ticket["status"], "previous_value": before["status"]})
        added = [t for t in ticket["tags"] if t not in before["tags"]]
        removed = [t for t in before["tags"] if t not in ticket["tags"]]
        if added or removed:
            children.append({"tags": list(ticket["tags"]), "added_tags": added, "removed_tags": removed})
        for child in children:
            child.update(event_type="Change", via=via, via_reference_id=None)
        if changes.get("comment"):
            public = changes["comment"].get("public", True)
            children.append(
                {"event_type": "Comment", "via": via, "comment_present": True, "comment_public": public}
            )
        if children:
            self._audit(ticket["id"], updater, via, children)

    def _audit(self, ticket_id: int, updater: int, via: str, children: list[Json]) -> None:
        self._next_event_id += 1
        audit_id, stamp = self._next_event_id, int(self.clock())
        for child in children:
            self._next_event_id += 1
            child["id"] = self._next_event_id
        self.events.append(
            {
                "id": audit_id,
                "ticket_id": ticket_id,
                "timestamp": stamp,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)),
                "updater_id": updater,
                "via": via,
                "system": {"client": "triage-tests", "ip_address": "127.0.0.1"},
                "event_type": "Audit",
                "child_events": children,
            }
        )

    def agent_change(
        self,
        ticket_id: int,
        agent: int = 7,
        priority: str | None = None,
        add_tags: tuple[str, ...] = (),
        remove_tags: tuple[str, ...] = (),
        assignee: int | None = None,
        status: str | None = None,
    ) -> None:
        """An agent changes a ticket in Zendesk's web interface (`assignee`: assigns it to that agent;
        `status`: solved, closed...)."""
        with self._lock:
            ticket = self._ticket(ticket_id)
            assert ticket is not None, f"no ticket {ticket_id}"
            changes: Json = {"additional_tags": list(add_tags), "remove_tags": list(remove_tags)}
            if priority is not None:
                changes["priority"] = priority
            if assignee is not None:
                changes["assignee_id"] = assignee
            if status is not None:
                changes["status"] = status
            self._apply(ticket, changes, updater=agent, via="Web form")

    def _ticket_events(self, query: Json) -> Answer:
        """The time-based incremental export: events at or after start_time, a page at a time; a page
        never ends inside a second, so the next one (from end_time) repeats at most that second."""
        if self.fail_events:
            status, retry_after = self.fail_events.pop(0)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return status, headers, {"error": FAILURES.get(status, "InternalError")}
        try:
            start = int(query["start_time"])
        except (KeyError, ValueError):
            return 400, {}, {"error": "InvalidValue", "description": "start_time is required"}
        found = sorted((e for e in self.events if e["timestamp"] >= start), key=lambda e: e["id"])
        page = found[: self.page_size]
        while len(page) < len(found) and found[len(page)]["timestamp"] == page[-1]["timestamp"]:
            page.append(found[len(page)])
        end_time = page[-1]["timestamp"] if page else start
        return (
            200,
            {},
            {
                "ticket_events": page,
                "next_page": f"{self.address}{TICKET_EVENTS}?start_time={end_time}",
                "count": len(page),
                "end_time": end_time,
                "end_of_stream": len(page) == len(found),
            },
        )

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        url = urlsplit(path)
        return self.handle(method, url.path, body, headers, dict(parse_qsl(url.query)))
