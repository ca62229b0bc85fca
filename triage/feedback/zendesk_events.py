"""Corrections from the helpdesk, read from Zendesk's incremental ticket events (a pull: it works
behind a firewall, no webhook needed).

`GET /api/v2/incremental/ticket_events.json?start_time=T` returns the ticket updates since T, each an
audit with its `child_events` (a priority change: `{"priority": "high", "previous_value": "normal"}`;
a tag change: `added_tags`, `removed_tags`), and `end_time`, where the next page starts, until
`end_of_stream`. The cursor (the next start_time) is stored with the labels a page produced, in one
transaction, so a restart resumes where the last page ended; an event read twice (pages overlap at
their boundary second) is stored once, by its id.

A correction is a change by someone other than triage (its own API user, from users/me, and Zendesk's
system user are skipped) to a ticket triage wrote to (a receipt in the store, at or before the change):
a new priority sets the urgency, an added `category_*` or `sentiment_*` tag with a known value sets
that field. The label is the case of the latest message triage wrote to the ticket before the change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from triage.feedback.fields import values
from triage.feedback.poller import Poller, RetryLater
from triage.feedback.recorder import Judgement, Recorder
from triage.helpdesks.base import retry_after
from triage.oncall.acks import take_ticket
from triage.oncall.resolves import SOLVED, solve_ticket
from triage.store import StoreUnavailable
from triage.store.feedback import Correction

log = logging.getLogger(__name__)

CURSOR = "zendesk_ticket_events"
EVENTS_PATH = "/api/v2/incremental/ticket_events.json"
FIRST_LOOK_BACK_S = 60  # Zendesk serves events from at least a minute ago: the first read starts there
CLOCK_SLACK = timedelta(seconds=1)  # Zendesk's event times are whole seconds
TAG_FIELDS = {"category_": "category", "sentiment_": "sentiment"}


class EventsUnreadable(Exception):
    """The events endpoint answered something other than a page of events."""


class TicketEvents(Poller):
    reading = "Zendesk's ticket events"
    transient = (httpx.HTTPError, EventsUnreadable, StoreUnavailable)

    def __init__(
        self, client: httpx.Client, recorder: Recorder, categories: Sequence[str], poll_s: float
    ) -> None:
        super().__init__(poll_s)
        self.client = client
        self.recorder = recorder
        self.categories = categories
        self.me: int | None = None  # triage's own Zendesk user: its changes are not corrections

    def read_page(self) -> bool:
        """Read one page from the cursor and store its corrections; True at the end of the stream."""
        if self.me is None:
            self.me = self._whoami()
        start = self._start_time()
        response = self.client.get(EVENTS_PATH, params={"start_time": start})
        if response.status_code == 429:
            raise RetryLater(retry_after(response) or self.poll_s)
        if response.status_code >= 400:
            raise EventsUnreadable(f"{EVENTS_PATH}: HTTP {response.status_code}: {response.text[:200]}")
        page = _page(response)
        corrections = [c for event in page["ticket_events"] if (c := self._correction(event)) is not None]
        end_time = page.get("end_time")
        cursor = int(end_time) if isinstance(end_time, int | float) else start
        stored = self.recorder.record(corrections, cursor=(CURSOR, str(cursor)))
        for label in stored:
            log.info(
                "label from Zendesk: %s %s -> %s by user %s",
                label.field,
                label.model_value,
                label.team_value,
                label.person_id,
                extra={"message_id": label.message_id},
            )
        # A page that ends where it started cannot move on (more events in one second than a page
        # holds): wait for the next poll instead of asking for it again at once.
        return bool(page.get("end_of_stream")) or cursor <= start

    def _start_time(self) -> int:
        stored = self.recorder.feedback.cursor(CURSOR)
        return int(stored) if stored else int(time.time()) - FIRST_LOOK_BACK_S

    def _whoami(self) -> int:
        response = self.client.get("/api/v2/users/me.json")
        if response.status_code >= 400:
            raise EventsUnreadable(f"/api/v2/users/me.json: HTTP {response.status_code}")
        try:
            return int(response.json()["user"]["id"])
        except (ValueError, KeyError, TypeError):
            raise EventsUnreadable("/api/v2/users/me.json: no user id in the answer") from None

    def _correction(self, event: Any) -> Correction | None:
        """The correction an audit event makes, if it is someone else's change to a ticket triage wrote."""
        if not isinstance(event, dict) or not isinstance(event.get("child_events"), list):
            return None  # not a ticket update (e.g. an SLA or metric event)
        self._assigned(event)
        self._solved(event)
        updater, ticket = event.get("updater_id"), event.get("ticket_id")
        if not isinstance(updater, int) or updater == self.me or updater < 0 or ticket is None:
            return None  # triage's own change, Zendesk's system user, or incomplete
        at = _event_time(event)
        if at is None:
            return None
        receipt = self.recorder.feedback.ticket_receipt(str(ticket), at + CLOCK_SLACK)
        if receipt is None:
            return None  # a ticket triage never wrote to (or not yet at that time)
        judgements = [
            Judgement(
                message_id=receipt.message_id,
                field=field,
                value=value,
                source="zendesk",
                person_id=str(updater),
                person_name=None,
                place=f"zendesk ticket {ticket}",
                event=str(child_id),
                at=at,
            )
            for child_id, field, value in self._changes(event["child_events"])
        ]
        return self.recorder.correction(judgements) if judgements else None

    def _assigned(self, event: dict[str, Any]) -> None:
        """An agent assigned to the ticket (a child `{"assignee_id": 7, "previous_value": null}`) has
        taken its cases: "I'm on it" from the helpdesk (triage/oncall/acks.py)."""
        at, ticket = _event_time(event), event.get("ticket_id")
        for child in event["child_events"]:
            if not isinstance(child, dict) or child.get("event_type") != "Change" or at is None:
                continue
            agent = child.get("assignee_id")  # the ticket events' form; an audit's: field_name and value
            if child.get("field_name") == "assignee_id":
                agent = _int(child.get("value"))
            if isinstance(agent, int) and not isinstance(agent, bool) and ticket is not None:
                take_ticket(
                    self.recorder.store, str(ticket), f"Zendesk agent {agent}", "zendesk", at + CLOCK_SLACK
                )

    def _solved(self, event: dict[str, Any]) -> None:
        """A ticket set to solved or closed (a child `{"status": "solved", "previous_value": "open"}`)
        resolves the PagerDuty alerts of its cases (triage/oncall/resolves.py)."""
        at, ticket = _event_time(event), event.get("ticket_id")
        for child in event["child_events"]:
            if not isinstance(child, dict) or child.get("event_type") != "Change" or at is None:
                continue
            status = child.get("status")  # the ticket events' form; an audit's: field_name and value
            if child.get("field_name") == "status":
                status = child.get("value")
            if status in SOLVED and ticket is not None:
                solve_ticket(self.recorder.store, str(ticket), at + CLOCK_SLACK)

    def _changes(self, children: list[Any]) -> list[tuple[Any, str, str]]:
        """(child event id, field, value) for each priority or known category_/sentiment_ tag set."""
        changes = []
        for child in children:
            if not isinstance(child, dict) or child.get("event_type") != "Change" or child.get("id") is None:
                continue
            if child.get("priority") in values("urgency", self.categories):
                changes.append((child["id"], "urgency", child["priority"]))
            for tag in child.get("added_tags") or []:
                for prefix, field in TAG_FIELDS.items():
                    value = str(tag).removeprefix(prefix)
                    if str(tag).startswith(prefix) and value in values(field, self.categories):
                        changes.append((child["id"], field, value))
        return changes


def _page(response: httpx.Response) -> dict[str, Any]:
    try:
        page = response.json()
    except ValueError:
        raise EventsUnreadable(f"{EVENTS_PATH}: the answer is not JSON") from None
    if not isinstance(page, dict) or not isinstance(page.get("ticket_events"), list):
        raise EventsUnreadable(f"{EVENTS_PATH}: no ticket_events list in the answer")
    return page


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _event_time(event: dict[str, Any]) -> datetime | None:
    stamp = event.get("timestamp")
    if isinstance(stamp, int | float):
        return datetime.fromtimestamp(stamp, UTC)
    try:
        return datetime.fromisoformat(str(event.get("created_at")).replace("Z", "+00:00"))
    except ValueError:
        return None
