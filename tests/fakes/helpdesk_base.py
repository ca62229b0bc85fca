"""What the Gorgias, Kustomer and Freshdesk stand-ins share: tickets kept in memory with their priority,
tags and notes; every request logged; unknown tickets 404 (`strict_ids`) or created on first use;
`forbidden` tickets 403; writes (PUT/PATCH/POST) scripted to fail by `fail_next` or limited by
`rate_limit_per_s` (a 429 with Retry-After), as the vendors' rate limiters answer.

Subclasses route `(method, path, query, body)` for an authorized request; `agent_change` is a person's
change through the helpdesk's own interface (kept as an event, for the corrections readers).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.local_server import Answer, LocalJSONServer

Json = dict[str, Any]


def basic_credentials(headers: dict[str, str]) -> str | None:
    """`user:password` from an `Authorization: Basic ...` header (names lower-cased), or None."""
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


class FakeHelpdesk(LocalJSONServer):
    error_429: ClassVar[Json] = {"error": "Too Many Requests"}

    def __init__(self) -> None:
        super().__init__()
        self.tickets: dict[str, Json] = {}
        self.notes: dict[str, list[Json]] = {}
        self.requests: list[Json] = []
        self.strict_ids = False
        self.forbidden: set[str] = set()
        self.rate_limit_per_s: float | None = None  # at least this many seconds between writes
        self.early_retries = 0  # writes repeated before the Retry-After had passed
        self._last_write: float | None = None
        self._blocked_until = 0.0
        self.events: list[Json] = []  # changes, oldest first (triage's and agents')
        self.clock = time.time
        self._next_id = 1000

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- what a subclass provides ---------------------------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def route(self, method: str, path: str, query: Json, body: Any) -> Answer:
        raise NotImplementedError

    def new_ticket(self, ticket_id: str) -> Json:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> Json | None:
        if ticket_id not in self.tickets and not self.strict_ids:
            self.tickets[ticket_id] = self.new_ticket(ticket_id)
            self.notes[ticket_id] = []
        return self.tickets.get(ticket_id)

    def ticket_or_error(self, ticket_id: str) -> Json | Answer:
        """The ticket, or the 403 / 404 answer the vendor gives."""
        if ticket_id in self.forbidden:
            return 403, {}, {"error": "Forbidden", "message": "You are not allowed to access this ticket"}
        ticket = self.ticket(ticket_id)
        if ticket is None:
            return 404, {}, {"error": "Not Found", "message": f"ticket {ticket_id} does not exist"}
        return ticket

    def note_count(self, ticket_id: Any) -> int:
        return len(self.notes.get(str(ticket_id), []))

    def _write_gate(self) -> Answer | None:
        """A scripted failure, or a 429 while the rate limit holds; counts writes repeated too soon."""
        now = time.monotonic()
        if now < self._blocked_until:
            self.early_retries += 1
        failure = self._scripted_failure()
        if failure:
            status, headers = failure
            if status == 429 and "Retry-After" in headers:
                self._blocked_until = now + float(headers["Retry-After"])
            return status, headers, self.error_429 if status == 429 else {"error": "Service Unavailable"}
        if self.rate_limit_per_s and self._last_write is not None:
            wait = self.rate_limit_per_s - (now - self._last_write)
            if wait > 0:
                self.rejected_429 += 1
                retry = max(1, math.ceil(wait))
                self._blocked_until = now + retry
                return 429, {"Retry-After": str(retry)}, self.error_429
        self._last_write = now
        return None

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return 400, {}, {"error": "Bad Request", "message": "the body is not JSON"}
        url = urlsplit(path)
        query = dict(parse_qsl(url.query))
        with self._lock:
            self.requests.append(
                {"method": method, "path": url.path, "query": query, "json": body, "headers": headers}
            )
            if not self.authorized({k.lower(): v for k, v in headers.items()}):
                return 401, {}, {"error": "Unauthorized", "message": "invalid credentials"}
            if method in ("PUT", "PATCH", "POST") and (gate := self._write_gate()):
                return gate
            return self.route(method, url.path, query, body)

    def writes(self, method: str | None = None) -> list[Json]:
        wanted = (method,) if method else ("PUT", "PATCH", "POST")
        return [r for r in self.requests if r["method"] in wanted]
