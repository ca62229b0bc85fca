"""Corrections read from a helpdesk's list of recently updated tickets (Gorgias, Kustomer, Freshdesk),
polled with a cursor kept in the store; what they share. Each helpdesk's module says how to list its
tickets by update time and how to read a ticket's priority, tags and last editor.

A ticket triage wrote to (a receipt) whose priority, on triage's scale, or `category_*` / `sentiment_*`
tag now differs from what triage judged for the latest message it wrote there, has been corrected by a
person: triage only ever writes its own judgement, so its own changes are never corrections. A change
is stored once, however often the ticket is read again: its label's key names the ticket, triage's
write and the value. Tickets changed in the last SETTLE_S are left for the next read, so that a write
of triage's still under way (its receipt not yet stored) is never taken for a person's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from triage.feedback.fields import values
from triage.feedback.poller import Poller
from triage.feedback.recorder import Judgement, Recorder
from triage.helpdesks.base import TicketRefused
from triage.store import StoreUnavailable
from triage.store.feedback import Correction

log = logging.getLogger(__name__)

SETTLE_S = 10.0
CLOCK_SLACK = timedelta(seconds=2)  # a receipt is stored just after the helpdesk stamped its write
TAG_FIELDS = {"category_": "category", "sentiment_": "sentiment"}


@dataclass(frozen=True)
class TicketState:
    """A ticket as the helpdesk lists it, in triage's terms."""

    ticket_id: str
    updated_at: datetime
    urgency: str | None  # its priority on triage's scale (None: one triage does not write, e.g. Kustomer's 1)
    tags: tuple[str, ...]
    editor: str | None  # who changed it last, where the helpdesk says; None: not said


@dataclass(frozen=True)
class Page:
    """Tickets in the order they were updated, each with the cursor that reads on after it, and whether
    this was the last page for now."""

    tickets: list[tuple[TicketState, str]]
    done: bool


class TicketChanges(Poller):
    """The comparison; a subclass lists its helpdesk's tickets."""

    system = ""  # zendesk-style name: gorgias, kustomer, freshdesk
    me: str | None = None  # triage's own API user, where the helpdesk names editors
    transient = (httpx.HTTPError, TicketRefused, ValueError, KeyError, StoreUnavailable)

    def __init__(
        self,
        client: httpx.Client,
        recorder: Recorder,
        categories: Sequence[str],
        poll_s: float,
        settle_s: float = SETTLE_S,
    ) -> None:
        super().__init__(poll_s)
        self.client = client  # the helpdesk module's, with its base URL and credentials
        self.recorder = recorder
        self.categories = categories
        self.settle_s = settle_s
        self.reading = f"{self.system}'s ticket changes"

    @property
    def cursor_name(self) -> str:
        return f"{self.system}_ticket_changes"

    def page(self, cursor: str | None) -> Page:
        """The tickets updated from `cursor` on (None: from a minute ago, or the start of the list)."""
        raise NotImplementedError

    def read_page(self) -> bool:
        """Read one page from the stored cursor, store its corrections and move the cursor; True when
        there is nothing more to read now."""
        start = self.recorder.feedback.cursor(self.cursor_name)
        page = self.page(start)
        settled = datetime.now(UTC) - timedelta(seconds=self.settle_s)
        corrections: list[Correction] = []
        cursor, done = start, page.done
        for state, after in page.tickets:
            if state.updated_at > settled:
                done = True  # changed just now: read again next time
                break
            if (correction := self._correction(state)) is not None:
                corrections.append(correction)
            cursor = after
        stored = self.recorder.record(corrections, cursor=(self.cursor_name, cursor) if cursor else None)
        for label in stored:
            log.info(
                "label from %s: %s %s -> %s",
                self.system,
                label.field,
                label.model_value,
                label.team_value,
                extra={"message_id": label.message_id},
            )
        return done or cursor == start

    def _correction(self, state: TicketState) -> Correction | None:
        if self.me is not None and state.editor == self.me:
            return None  # triage's own write, by its own API user
        receipt = self.recorder.feedback.ticket_receipt(
            state.ticket_id, state.updated_at + CLOCK_SLACK, system=self.system
        )
        if receipt is None:
            return None
        found = self.recorder.store.results([receipt.message_id])
        if not found:
            return None
        [(_, judged)] = found
        judgements = [
            Judgement(
                message_id=receipt.message_id,
                field=field,
                value=value,
                source=self.system,
                person_id=state.editor or f"{self.system} agent",
                person_name=None,
                place=f"{self.system} ticket {state.ticket_id}",
                event=f"{state.ticket_id}:{receipt.delivery_id}:{value}",
                at=state.updated_at,
            )
            for field, value in self._changes(state, judged)
        ]
        return self.recorder.correction(judgements) if judgements else None

    def _changes(self, state: TicketState, judged: Any) -> list[tuple[str, str]]:
        """(field, value) where the ticket now says other than triage judged."""
        changes = []
        if state.urgency is not None and state.urgency != judged.urgency:
            changes.append(("urgency", state.urgency))
        for prefix, field in TAG_FIELDS.items():
            known = values(field, self.categories)
            tagged = [t.removeprefix(prefix) for t in state.tags if t.startswith(prefix)]
            other = [v for v in tagged if v in known and v != getattr(judged, field)]
            if other:  # a person's tag beside (or instead of) triage's
                changes.append((field, other[-1]))
        return changes


def first_look(seconds: float = 60) -> str:
    """Where a first read starts: a minute ago, as an ISO time."""
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime:
    """An ISO 8601 time as the helpdesks write them (`Z` or an offset)."""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
