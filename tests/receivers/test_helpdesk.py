from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.receivers.conftest import claim_one, store_case
from triage.helpdesks.base import HelpdeskConfigError
from triage.helpdesks.zendesk import Zendesk, make_client
from triage.receivers.base import DeliveryFailed
from triage.receivers.helpdesk import HelpdeskSender
from triage.routing.tree import HelpdeskReceiver
from triage.settings import HelpdeskSettings
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow

CONFIG = HelpdeskReceiver(set_priority=True, tags=["ai_triaged"], internal_note=True)


def client(zendesk, token=None):
    return {
        "zendesk": Zendesk(
            make_client(
                HelpdeskSettings(
                    base_url=zendesk.base_url, email=zendesk.email, api_token=token or zendesk.api_token
                )
            )
        )
    }


def send(zendesk, store, config=CONFIG):
    return HelpdeskSender(client(zendesk), config, Incidents(store)).send_batch(
        [claim_one(store, "helpdesk")]
    )[0]


def test_ticket_gets_priority_tags_and_an_internal_note(zendesk, store):
    store_case(store, "helpdesk", urgency="urgent", ticket={"system": "zendesk", "id": 48211})
    outcome = send(zendesk, store)
    assert outcome.status == "sent"
    [request] = [r for r in zendesk.requests if r["method"] == "PUT"]
    assert request["path"] == "/api/v2/tickets/48211.json"
    ticket = request["json"]["ticket"]
    assert ticket["priority"] == "urgent"
    assert set(ticket["additional_tags"]) == {
        "ai_triaged",
        "triage_urgent",
        "sentiment_negative",
        "category_outage",
    }
    assert ticket["comment"]["public"] is False and "Checkout fails for everyone" in ticket["comment"]["body"]
    assert zendesk.tickets[48211]["priority"] == "urgent"


def test_a_message_without_a_ticket_is_skipped_with_a_reason(zendesk, store):
    store_case(store, "helpdesk")
    outcome = send(zendesk, store)
    assert (outcome.status, outcome.detail) == ("skipped", "no ticket id") and zendesk.requests == []


def test_429_is_waited_out_with_retry_after(zendesk, store):
    zendesk.fail_next(429, count=1, retry_after=1)
    store_case(store, "helpdesk", ticket={"id": 7})
    assert send(zendesk, store).status == "sent"
    assert len([r for r in zendesk.requests if r["method"] == "PUT"]) == 2


def test_a_long_outage_gives_the_delivery_back(zendesk, store):
    zendesk.fail_next(503, count=10)
    store_case(store, "helpdesk", ticket={"id": 7})
    assert isinstance(send(zendesk, store), DeliveryFailed)


def test_a_note_written_before_a_crash_is_not_written_again(zendesk, store):
    store_case(store, "helpdesk", ticket={"id": 9})
    sender = HelpdeskSender(client(zendesk), CONFIG, Incidents(store))
    sender.send_batch([claim_one(store, "helpdesk")])
    with store.session() as session:
        session.execute(update(DeliveryRow).values(status="sending"))
    [again] = store.claim_deliveries("helpdesk", "restarted", 1, timedelta(seconds=-1))
    assert "found the note" in sender.send_batch([again])[0].detail
    assert len(zendesk.comments[9]) == 1


def test_bad_credentials_fail_fast(zendesk):
    with pytest.raises(HelpdeskConfigError, match="rejected TRIAGE_HELPDESK__EMAIL"):
        client(zendesk, token="wrong")["zendesk"].check()
    client(zendesk)["zendesk"].check()


def grouped_case(store, ticket_id: int, link: bool = True):
    """A helpdesk delivery of a grouped route, as the pipeline stores it."""
    from sqlalchemy import update as update_rows

    row = store_case(store, "desk", urgency="urgent", ticket={"id": ticket_id}, conversation=f"c{ticket_id}")
    group = {
        "wait_s": 0,
        "interval_s": 60,
        "idle_s": 600,
        "similarity": 0.3,
        "mode": "link",
        "key": "category=outage",
    }
    with store.session() as session:
        session.execute(
            update_rows(DeliveryRow)
            .where(DeliveryRow.id == row.id)
            .values(
                group_key='route.routes[0] {"category": "outage"}', payload={**row.payload, "group": group}
            )
        )


def test_a_problem_ticket_is_created_once_even_when_its_creation_was_not_recorded(zendesk, store):
    from sqlalchemy import update as update_rows

    from triage.receivers.outbox import Outbox
    from triage.store.tables import IncidentRow

    config = HelpdeskReceiver(tags=["ai_triaged"], link_problem=True)
    sender = HelpdeskSender(client(zendesk), config, Incidents(store))
    outbox = Outbox(store, {"desk": sender}, "lane-a", timedelta(seconds=60))
    for ticket_id in (11, 12):
        grouped_case(store, ticket_id)
        assert outbox.send_once("desk") == 1  # each ticket gets its own update at once
    assert outbox.update_incident_once("desk") == 1  # two tickets: the problem, and the links
    [problem] = [t for t in zendesk.tickets.values() if t.get("type") == "problem"]
    assert problem["external_id"].startswith("triage-incident-")
    assert [zendesk.tickets[i]["problem_id"] for i in (11, 12)] == [problem["id"]] * 2

    with store.session() as session:  # a crash after Zendesk created it, before the store knew
        session.execute(
            update_rows(IncidentRow).values(
                problem_ticket_id=None, next_update_at=IncidentRow.first_case_at, update_attempts=1
            )
        )
    assert outbox.update_incident_once("desk") == 1
    assert len([t for t in zendesk.tickets.values() if t.get("type") == "problem"]) == 1  # found, not made
    assert Incidents(store).get(1).problem_ticket_id == str(problem["id"])

    grouped_case(store, 13)  # a later case links its own ticket in its update
    assert outbox.send_once("desk") == 1
    assert (zendesk.tickets[13]["type"], zendesk.tickets[13]["problem_id"]) == ("incident", problem["id"])
    assert outbox.update_incident_once("desk") == 0  # nothing left to do
