"""Taking a case: stored once whoever takes it first and however (a Slack click, a Zendesk assignment
read from the ticket events stand-in), counted in /metrics with the time since its alert."""

from __future__ import annotations

from sqlalchemy import select

from tests.feedback.conftest import sample
from tests.feedback.test_zendesk_events import TICKET, read_all, reader, written
from triage.oncall.acks import Target, take
from triage.store.tables import AcknowledgementRow


def acknowledgements(store) -> list[tuple]:
    with store.session() as session:
        rows = session.scalars(select(AcknowledgementRow).order_by(AcknowledgementRow.acked_at))
        return [(row.subject, row.who, row.how, row.urgency) for row in rows]


def test_an_agent_assigned_in_zendesk_takes_the_case_once_and_a_later_click_changes_nothing(zendesk, store):
    message_id = written(zendesk, store, urgency="high")
    before = sample("triage_acknowledged_total", how="zendesk")
    waited = sample("triage_time_to_acknowledge_seconds_count", urgency="high")
    zendesk.agent_change(48211, agent=7, assignee=7)
    zendesk.agent_change(48211, agent=7, assignee=9)  # re-assigned: still taken once, by the first

    read_all(reader(zendesk, store))
    read_all(reader(zendesk, store))  # the events read again (a restart before the cursor moved)

    assert acknowledgements(store) == [(f"message:{message_id}", "Zendesk agent 7", "zendesk", "high")]
    assert sample("triage_acknowledged_total", how="zendesk") == before + 1
    assert sample("triage_time_to_acknowledge_seconds_count", urgency="high") == waited + 1
    assert take(store, Target(message_id=message_id), "ana", "slack") is False
    assert acknowledgements(store)[0][1] == "Zendesk agent 7"


def test_a_ticket_change_that_is_no_assignment_takes_nothing(zendesk, store):
    written(zendesk, store, ticket=TICKET)
    zendesk.agent_change(48211, agent=7, priority="urgent")
    read_all(reader(zendesk, store))
    assert acknowledgements(store) == []
