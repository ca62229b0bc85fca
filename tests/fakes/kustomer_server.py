"""A local server speaking the Kustomer API's wire format (JSON:API style `data` envelopes): the current
user (`GET /v1/users/current`), conversations (`GET`/`PUT /v1/conversations/{id}`, priority 1-5),
appending tags (`POST /v1/conversations/{id}/tags`, the body a bare JSON array of tag names or ids;
a new name creates the tag; the conversation keeps tag ids), and notes (`GET
/v1/conversations/{id}/notes` paged by `page` and `pageSize` with `links.next`, `POST` to write one).

Auth is `Authorization: Bearer {api_key}`. Writes are what `fail_next` scripts and `rate_limit_per_s`
limits (429 with `Retry-After` and `x-ratelimit-reset`).
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any, ClassVar

from tests.fakes.helpdesk_base import FakeHelpdesk, Json
from tests.fakes.local_server import Answer

API_USER = "5f0c0a1b2c3d4e5f60718293"
CONVERSATION = re.compile(r"^/v1/conversations/([^/]+)(/tags|/notes)?$")
MAX_PAGE = 100


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class FakeKustomer(FakeHelpdesk):
    error_429: ClassVar[Json] = {"errors": [{"status": 429, "title": "Too Many Requests"}]}

    def __init__(self, api_key: str = "kustomer-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.tag_ids: dict[str, str] = {}  # name -> id

    def env(self) -> dict[str, str]:
        return {"TRIAGE_KUSTOMER__BASE_URL": self.address, "TRIAGE_KUSTOMER__API_KEY": self.api_key}

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.api_key}"

    def _write_gate(self) -> Answer | None:
        gate = super()._write_gate()
        if gate and gate[0] == 429 and "Retry-After" in gate[1]:
            gate[1]["x-ratelimit-reset"] = gate[1]["Retry-After"]
        return gate

    def new_ticket(self, ticket_id: str) -> Json:
        return {
            "type": "conversation",
            "id": ticket_id,
            "attributes": {
                "name": f"Conversation {ticket_id}",
                "status": "open",
                "priority": 1,
                "tags": [],
                "createdAt": now_iso(),
                "updatedAt": now_iso(),
            },
        }

    def tag_names(self, ticket_id: Any) -> list[str]:
        names = {tag_id: name for name, tag_id in self.tag_ids.items()}
        return [names[t] for t in self.tickets[str(ticket_id)]["attributes"]["tags"]]

    def priority(self, ticket_id: Any) -> int:
        return self.tickets[str(ticket_id)]["attributes"]["priority"]

    def route(self, method: str, path: str, query: Json, body: Any) -> Answer:
        if method == "GET" and path == "/v1/users/current":
            user = {
                "type": "user",
                "id": API_USER,
                "attributes": {"name": "Triage", "email": "bot@example.com"},
            }
            return 200, {}, {"data": user}
        if method == "POST" and path == "/v1/customers/search":
            return self._search(query, body or {})
        if method == "GET" and path.startswith("/v1/tags/"):
            names = {tag_id: name for name, tag_id in self.tag_ids.items()}
            tag_id = path.removeprefix("/v1/tags/")
            if tag_id not in names:
                return 404, {}, {"errors": [{"status": 404, "title": "Not Found"}]}
            return 200, {}, {"data": {"type": "tag", "id": tag_id, "attributes": {"name": names[tag_id]}}}
        match = CONVERSATION.match(path)
        if not match:
            return 404, {}, {"errors": [{"status": 404, "title": "Not Found"}]}
        found = self.ticket_or_error(match[1])
        if isinstance(found, tuple):
            status, headers, _ = found
            return (
                status,
                headers,
                {"errors": [{"status": status, "title": "Forbidden" if status == 403 else "Not Found"}]},
            )
        conversation, part = found, match[2]
        if part is None and method == "GET":
            return 200, {}, {"data": conversation}
        if part is None and method == "PUT":
            return self._update(conversation, body or {})
        if part == "/tags" and method == "POST":
            return self._append_tags(conversation, body)
        if part == "/notes" and method == "GET":
            return self._notes(match[1], query)
        if part == "/notes" and method == "POST":
            return self._note(match[1], body or {})
        return 405, {}, {"errors": [{"status": 405, "title": "Method Not Allowed"}]}

    def _invalid(self, detail: str) -> Answer:
        return 400, {}, {"errors": [{"status": 400, "title": "Bad Request", "detail": detail}]}

    def _update(self, conversation: Json, body: Json, by: str = API_USER) -> Answer:
        priority = body.get("priority", conversation["attributes"]["priority"])
        if not isinstance(priority, int) or not 1 <= priority <= 5:
            return self._invalid("priority must be an integer from 1 to 5")
        conversation["attributes"]["priority"] = priority
        self._changed(conversation, by)
        return 200, {}, {"data": conversation}

    def _append_tags(self, conversation: Json, names: Any, by: str = API_USER) -> Answer:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return self._invalid("tags must be a list of tag names or ids")
        tags = conversation["attributes"]["tags"]
        for name in names:
            tag_id = (
                name
                if name in self.tag_ids.values()
                else self.tag_ids.setdefault(name, f"tag{len(self.tag_ids) + 1:04d}")
            )
            if tag_id not in tags:
                tags.append(tag_id)
        self._changed(conversation, by)
        return 200, {}, {"data": conversation}

    def _search(self, query: Json, body: Json) -> Answer:
        """The search this stand-in understands: conversations updated at or after a time, oldest first."""
        try:
            [criterion] = body["and"]
            since = criterion["conversation_updated_at"]["gte"]
            assert body["sort"] == [{"conversation_updated_at": "asc"}]
            assert body["queryContext"] == "conversation"
        except (KeyError, ValueError, TypeError, AssertionError):
            return self._invalid("this stand-in searches conversations by conversation_updated_at only")
        size = int(query.get("pageSize", 100))
        page = int(query.get("page", 1))
        moment = parse_iso(since)
        found = sorted(
            (c for c in self.tickets.values() if parse_iso(c["attributes"]["updatedAt"]) >= moment),
            key=lambda c: (c["attributes"]["updatedAt"], c["id"]),
        )
        start = (page - 1) * size
        more = start + size < len(found)
        links = {"next": f"/v1/customers/search?page={page + 1}&pageSize={size}" if more else None}
        return (
            200,
            {},
            {"data": found[start : start + size], "meta": {"page": page, "pageSize": size}, "links": links},
        )

    def agent_change(
        self,
        conversation_id: str,
        agent: str = "agent-7",
        priority: int | None = None,
        add_tags: tuple[str, ...] = (),
    ) -> None:
        """An agent changes the conversation in Kustomer's agent desktop."""
        with self._lock:
            conversation = self.ticket(str(conversation_id))
            assert conversation is not None
            if priority is not None:
                self._update(conversation, {"priority": priority}, by=agent)
            if add_tags:
                self._append_tags(conversation, list(add_tags), by=agent)

    def _notes(self, conversation_id: str, query: Json) -> Answer:
        try:
            page, size = int(query.get("page", 1)), int(query.get("pageSize", 100))
        except ValueError:
            return self._invalid("page and pageSize are integers")
        if page < 1 or not 1 <= size <= MAX_PAGE:
            return self._invalid(f"pageSize is 1 to {MAX_PAGE}")
        notes = self.notes[conversation_id]
        start = (page - 1) * size
        base = f"/v1/conversations/{conversation_id}/notes"
        more = start + size < len(notes)
        links = {
            "self": f"{base}?page={page}&pageSize={size}",
            "first": f"{base}?page=1&pageSize={size}",
            "prev": f"{base}?page={page - 1}&pageSize={size}" if page > 1 else None,
            "next": f"{base}?page={page + 1}&pageSize={size}" if more else None,
        }
        return (
            200,
            {},
            {"data": notes[start : start + size], "meta": {"page": page, "pageSize": size}, "links": links},
        )

    def _note(self, conversation_id: str, body: Json) -> Answer:
        text = body.get("body")
        if not isinstance(text, str) or not 1 <= len(text) <= 10_240:
            return self._invalid("body is 1 to 10240 characters")
        note = {
            "type": "note",
            "id": f"note{self.next_id()}",
            "attributes": {"body": text, "createdAt": now_iso()},
            "relationships": {
                "conversation": {"data": {"type": "conversation", "id": conversation_id}},
                "createdBy": {"data": {"type": "user", "id": API_USER}},
            },
        }
        self.notes[conversation_id].append(note)
        return 201, {}, {"data": note}

    def _changed(self, conversation: Json, by: str) -> None:
        conversation["attributes"]["updatedAt"] = time.strftime(
            "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.clock())
        )
        conversation["attributes"]["modifiedBy"] = by

    def seed_notes(self, conversation_id: str, count: int) -> None:
        """A conversation with a long history of agents' notes."""
        with self._lock:
            self.ticket(conversation_id)
            for n in range(count):
                self.notes[conversation_id].append(
                    {"type": "note", "id": f"old{n}", "attributes": {"body": f"note {n}"}}
                )
