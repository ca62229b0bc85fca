from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.receivers.conftest import claim_one, store_case
from triage.receivers.base import DeliveryFailed
from triage.receivers.helpdesk import HelpdeskConfigError, HelpdeskSender, check_credentials, make_client
from triage.routing.tree import HelpdeskReceiver
from triage.settings import HelpdeskSettings
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow

CONFIG = HelpdeskReceiver(set_priority=True, tags=["ai_triaged"], internal_note=True)


def client(zendesk, token=None):
    return make_client(
        HelpdeskSettings(base_url=zendesk.base_url, email=zendesk.email, api_token=token or zendesk.api_token)
    )


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
        check_credentials(client(zendesk, token="wrong"))
    check_credentials(client(zendesk))
