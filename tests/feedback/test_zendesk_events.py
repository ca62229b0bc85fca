"""Corrections read from the Zendesk stand-in's incremental ticket events by the real HTTP client:
an agent's priority or category tag change becomes a label, triage's own change does not, and a
restart resumes from the cursor kept in the store."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests.feedback.conftest import CATEGORIES, sample
from tests.receivers.conftest import send_one, store_case
from triage.feedback.recorder import Recorder
from triage.feedback.zendesk_events import CURSOR, EVENTS_PATH, RetryLater, TicketEvents
from triage.helpdesks.zendesk import Zendesk, make_client
from triage.receivers.helpdesk import HelpdeskSender
from triage.routing.tree import HelpdeskReceiver
from triage.settings import HelpdeskSettings
from triage.store.feedback import FeedbackStore
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow, LabelRow

TICKET = {"system": "zendesk", "id": 48211}


def client(zendesk):
    return make_client(
        HelpdeskSettings(base_url=zendesk.base_url, email=zendesk.email, api_token=zendesk.api_token)
    )


def written(zendesk, store, ticket=TICKET, urgency="normal", **case) -> str:
    """A case whose ticket triage updated (priority, tags, note) through the real sender; its message id."""
    delivery = store_case(store, "helpdesk", urgency=urgency, ticket=ticket, **case)
    desks = {"zendesk": Zendesk(client(zendesk))}
    sender = HelpdeskSender(desks, HelpdeskReceiver(), Incidents(store), FeedbackStore(store))
    assert send_one(store, sender, "helpdesk").status == "sent"
    return delivery.message_id


def reader(zendesk, store, pipeline=None) -> TicketEvents:
    recorder = Recorder(store, pipeline.route if pipeline else None)
    return TicketEvents(client(zendesk), recorder, CATEGORIES, poll_s=60)


def labels(store) -> list[LabelRow]:
    with store.session() as session:
        return list(session.scalars(select(LabelRow).order_by(LabelRow.id)))


def read_all(events: TicketEvents) -> None:
    while not events.read_page():
        pass


def test_an_agents_priority_change_is_a_label_and_triages_own_change_is_not(zendesk, store, pipeline):
    message_id = written(zendesk, store)
    assert zendesk.tickets[48211]["priority"] == "normal" and len(zendesk.events) == 1  # triage's write
    zendesk.agent_change(48211, agent=7, priority="urgent")
    before = sample("triage_corrections_total", field="urgency", source="zendesk")

    read_all(reader(zendesk, store, pipeline))

    [label] = labels(store)
    assert (label.message_id, label.field, label.model_value, label.team_value) == (
        message_id,
        "urgency",
        "normal",
        "urgent",
    )
    assert (label.source, label.person_id, label.place) == ("zendesk", "7", "zendesk ticket 48211")
    assert sample("triage_corrections_total", field="urgency", source="zendesk") == before + 1
    with store.session() as session:  # urgent now: on-call hears of it, as an escalation would
        [oncall] = session.scalars(select(DeliveryRow).where(DeliveryRow.receiver == "oncall")).all()
    assert oncall.payload["correction"]["by"] == "7"


def test_a_category_tag_set_by_an_agent_is_a_category_label(zendesk, store):
    written(zendesk, store)
    zendesk.agent_change(48211, add_tags=("category_billing", "vip"), remove_tags=("category_outage",))
    read_all(reader(zendesk, store))
    [label] = labels(store)
    assert (label.field, label.model_value, label.team_value) == ("category", "outage", "billing")


def test_changes_triage_never_wrote_to_and_by_triage_itself_are_not_labels(zendesk, store):
    written(zendesk, store)
    zendesk.agent_change(777, priority="high")  # a ticket triage never touched
    zendesk.agent_change(
        48211, agent=1, priority="high"
    )  # the API user: triage (or a script using its token)
    zendesk.agent_change(48211, agent=-1, priority="low")  # Zendesk's system user
    zendesk.agent_change(48211, add_tags=("category_nonsense",))  # not a configured category
    read_all(reader(zendesk, store))
    assert labels(store) == []


def test_a_restart_resumes_from_the_stored_cursor_and_stores_nothing_twice(zendesk, store):
    now = int(time.time()) + 1  # the changes come after triage's write (its receipt)
    zendesk.clock = lambda: now
    written(zendesk, store)
    for second, change in enumerate(({"priority": "high"}, {"add_tags": ("category_bug",)}), start=1):
        zendesk.clock = lambda second=second: now + second
        zendesk.agent_change(48211, **change)
    zendesk.page_size = 2  # pages overlap at their boundary second: the reader follows end_time
    read_all(reader(zendesk, store))
    pages = [r["query"]["start_time"] for r in zendesk.requests if r["path"] == EVENTS_PATH]
    assert len(pages) == 2 and pages[1] == str(now + 1)  # the second page from the first's end_time
    assert FeedbackStore(store).cursor(CURSOR) == str(now + 2)
    assert [label.team_value for label in labels(store)] == ["high", "bug"]  # the overlap stored once

    zendesk.clock = lambda: now + 3
    zendesk.agent_change(48211, priority="urgent")
    zendesk.requests.clear()
    read_all(reader(zendesk, store))  # a new process: only the store remembers where it was
    pages = [r["query"]["start_time"] for r in zendesk.requests if r["path"] == EVENTS_PATH]
    assert pages == [str(now + 2)]  # from where the last run ended
    assert [label.team_value for label in labels(store)] == ["high", "bug", "urgent"]


def test_the_first_read_starts_a_minute_back_and_a_rate_limit_waits(zendesk, store):
    events = reader(zendesk, store)
    zendesk.fail_events = [(429, 7)]
    with pytest.raises(RetryLater) as waited:
        events.read_page()
    assert waited.value.seconds == 7
    assert events.read_page() is True
    [_, request] = [r for r in zendesk.requests if r["path"] == EVENTS_PATH]
    assert abs(int(request["query"]["start_time"]) - (time.time() - 60)) < 5
