"""What every helpdesk module implements, and what they share: the tags and note triage writes, the
delivery's marker, and one HTTP call that waits out 429s and names permanent refusals.

A write-back is a few calls (priority, tags, note); the note, which carries the delivery's marker, is
always the last. A delivery in doubt after a crash is looked up by its marker in the ticket's notes (all
pages): found, everything was written; not found, the calls are made again (priority and added tags are
the same whatever times they are set, the note is written once).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

from triage.routing.tree import HelpdeskReceiver

if TYPE_CHECKING:
    from triage.store.tables import DeliveryRow, IncidentRow

MAX_WAIT_S = 30.0  # the longest Retry-After waited inline; a longer one hands the delivery back
ATTEMPTS = 4  # per call, for 429s and 5xx


class HelpdeskConfigError(Exception):
    """A helpdesk cannot be used as configured (bad URL, bad credentials); raised at start."""


class TicketRefused(Exception):
    """The helpdesk will never take this write (the ticket is gone, forbidden, or refuses the update):
    a failed delivery, not tried again."""


class HelpdeskBusy(Exception):
    """A transient failure (429 for longer than MAX_WAIT_S, 5xx, 401 mid-run): the delivery is tried
    again, not before `retry_after_s` when the helpdesk said so."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class Helpdesk(Protocol):
    system: str  # zendesk | gorgias | kustomer | freshdesk: the message's ticket.system

    def check(self) -> None:
        """One call with the credentials; HelpdeskConfigError (one line naming the settings) if refused."""
        ...

    def has_note(self, ticket_id: str, delivery_id: int) -> bool:
        """Whether the delivery's note is on the ticket (every page of its notes is read)."""
        ...

    def write(self, ticket_id: str, case: dict[str, Any], config: HelpdeskReceiver, delivery_id: int) -> None:
        """Priority, tags (added), then the note. Raises TicketRefused, HelpdeskBusy or httpx.HTTPError."""
        ...


@runtime_checkable
class ProblemTickets(Protocol):
    """A helpdesk with problem tickets (Zendesk): a grouped incident's tickets are linked to one."""

    def write(
        self,
        ticket_id: str,
        case: dict[str, Any],
        config: HelpdeskReceiver,
        delivery_id: int,
        problem_id: str | None = None,
    ) -> None: ...

    def problem_ticket(
        self, incident: IncidentRow, members: list[DeliveryRow], config: HelpdeskReceiver
    ) -> str: ...

    def link(self, ticket_id: str, problem_id: str) -> None: ...


def marker(delivery_id: int) -> str:
    return f"[triage delivery {delivery_id}]"


def tags(case: dict[str, Any], config: HelpdeskReceiver) -> list[str]:
    """The tags triage adds: the receiver's own, then triage_<urgency>, sentiment_*, category_*."""
    return [
        *config.tags,
        f"triage_{case['urgency']}",
        f"sentiment_{case['sentiment']}",
        f"category_{case['category']}",
    ]


def note(case: dict[str, Any], delivery_id: int) -> str:
    """The internal note: the judgement, the summary, the model, and why (the route's matchers)."""
    degraded = " (fallback model: the LLM was unavailable)" if case.get("degraded") else ""
    matchers = case.get("route_matchers") or []
    why = f"Why: {' and '.join(matchers)} ({case['route']})\n" if matchers and case.get("route") else ""
    return (
        f"Triage: {case['urgency']} urgency, {case['sentiment']} sentiment, {case['category']}.\n"
        f"Summary: {case['summary']}\n"
        f"{why}"
        f"Model: {case['model']}, confidence {case['confidence']:.0%}{degraded}\n"
        f"{marker(delivery_id)}"
    )


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait: `Retry-After`, else `X-RateLimit-Reset` (seconds, or an epoch time) if given."""
    for header in ("Retry-After", "X-RateLimit-Reset"):
        try:
            value = float(response.headers[header])
        except (KeyError, ValueError):
            continue
        return max(0.0, value - time.time()) if value > 1e9 else value
    return None


def request(client: httpx.Client, system: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One call: a 429 is waited out for its Retry-After (never repeated sooner), a 5xx a few times with
    backoff; then HelpdeskBusy. 403, 404, 400 and 422 are TicketRefused; other answers are returned."""
    response = None
    for attempt in range(ATTEMPTS):
        response = client.request(method, path, **kwargs)
        if response.status_code != 429 and response.status_code < 500:
            break
        wait = retry_after(response)
        if wait is None:
            wait = 2.0**attempt if response.status_code >= 500 else 1.0
        if wait > MAX_WAIT_S or attempt == ATTEMPTS - 1:
            raise HelpdeskBusy(f"{system} {method} {path}: HTTP {response.status_code}", retry_after_s=wait)
        time.sleep(wait)
    assert response is not None
    status = response.status_code
    if status in (403, 404):
        reason = "forbidden to this API key" if status == 403 else "not found"
        raise TicketRefused(f"{system} {method} {path}: HTTP {status} ({reason})")
    if status in (400, 422):
        raise TicketRefused(f"{system} {method} {path}: HTTP {status}: {response.text[:200]}")
    if status >= 400:
        raise HelpdeskBusy(f"{system} {method} {path}: HTTP {status}")
    return response


def check(client: httpx.Client, system: str, path: str, settings: str) -> httpx.Response:
    """GET `path` with the credentials at start; HelpdeskConfigError with one line if it fails."""
    try:
        response = client.get(path)
    except httpx.HTTPError as error:
        raise HelpdeskConfigError(f"cannot reach {system} at {client.base_url}: {error}") from None
    if response.status_code in (401, 403):
        raise HelpdeskConfigError(
            f"{system} at {client.base_url} rejected {settings} (HTTP {response.status_code})"
        )
    if response.status_code >= 400:
        raise HelpdeskConfigError(f"{system} at {client.base_url} answered HTTP {response.status_code}")
    return response
