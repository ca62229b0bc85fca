"""Corrections read from the Gorgias, Kustomer and Freshdesk stand-ins' ticket lists by the real HTTP
client: an agent's priority or category tag change on a ticket triage wrote to becomes a label (once,
however often the ticket is read), triage's own write does not, and nor does a ticket triage never
touched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.fakes.freshdesk_server import FakeFreshdesk
from tests.fakes.gorgias_server import FakeGorgias
from tests.fakes.kustomer_server import FakeKustomer
from tests.feedback.conftest import CATEGORIES, sample
from tests.helpdesks.conftest import settings_for
from tests.receivers.conftest import send_one, store_case
from triage.feedback.freshdesk_changes import FreshdeskChanges
from triage.feedback.gorgias_changes import GorgiasChanges
from triage.feedback.kustomer_changes import KustomerChanges
from triage.feedback.recorder import Recorder
from triage.helpdesks import configured
from triage.receivers.helpdesk import HelpdeskSender
from triage.routing.tree import HelpdeskReceiver
from triage.store.feedback import FeedbackStore
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow, LabelRow

READERS = {"gorgias": GorgiasChanges, "kustomer": KustomerChanges, "freshdesk": FreshdeskChanges}
FAKES = {"gorgias": FakeGorgias, "kustomer": FakeKustomer, "freshdesk": FakeFreshdesk}
# an agent's "urgent" and triage's own "normal", on each scale
URGENT = {"gorgias": "critical", "kustomer": 5, "freshdesk": 4}


@pytest.fixture(params=sorted(READERS))
def fake(request) -> Iterator:
    with FAKES[request.param]() as server:
        server.system = request.param
        yield server


def written(fake, store, ticket: int = 48211, urgency: str = "normal") -> str:
    """A case whose ticket triage wrote to through the real sender; its message id."""
    delivery = store_case(store, "helpdesk", urgency=urgency, ticket={"system": fake.system, "id": ticket})
    desks = configured(settings_for(fake.env()))
    sender = HelpdeskSender(desks, HelpdeskReceiver(), Incidents(store), FeedbackStore(store))
    assert send_one(store, sender, "helpdesk").status == "sent"
    return delivery.message_id


def reader(fake, store, pipeline=None):
    client = configured(settings_for(fake.env()))[fake.system].client
    recorder = Recorder(store, pipeline.route if pipeline else None)
    return READERS[fake.system](client, recorder, CATEGORIES, poll_s=60, settle_s=0)


def read_all(changes) -> None:
    for _ in range(20):
        if changes.read_page():
            return
    raise AssertionError("the reader never reached the end")


def labels(store) -> list[LabelRow]:
    with store.session() as session:
        return list(session.scalars(select(LabelRow).order_by(LabelRow.id)))


def test_an_agents_priority_change_is_a_label_and_triages_own_write_is_not(fake, store, pipeline):
    message_id = written(fake, store)
    read_all(reader(fake, store, pipeline))
    assert labels(store) == []  # triage's own write: its judgement, not a correction

    fake.agent_change(48211, priority=URGENT[fake.system])
    before = sample("triage_corrections_total", field="urgency", source=fake.system)
    read_all(reader(fake, store, pipeline))

    [label] = labels(store)
    assert (label.message_id, label.field, label.model_value, label.team_value) == (
        message_id,
        "urgency",
        "normal",
        "urgent",
    )
    assert (label.source, label.place) == (fake.system, f"{fake.system} ticket 48211")
    if fake.system == "kustomer":
        assert label.person_id == "agent-7"  # Kustomer names who changed a conversation
    assert sample("triage_corrections_total", field="urgency", source=fake.system) == before + 1
    with store.session() as session:  # urgent now: on-call hears of it, as an escalation would
        assert session.scalars(select(DeliveryRow).where(DeliveryRow.receiver == "oncall")).all()

    read_all(reader(fake, store, pipeline))  # a new process reads the ticket again: nothing twice
    assert len(labels(store)) == 1


def test_a_category_tag_an_agent_adds_is_a_category_label(fake, store):
    written(fake, store)
    fake.agent_change(48211, add_tags=("category_billing", "vip"))
    read_all(reader(fake, store))
    [label] = labels(store)
    assert (label.field, label.model_value, label.team_value) == ("category", "outage", "billing")


def test_tickets_triage_never_wrote_to_and_unknown_values_are_not_labels(fake, store):
    written(fake, store)
    fake.agent_change(777, priority=URGENT[fake.system])  # a ticket triage never touched
    fake.agent_change(48211, add_tags=("category_nonsense",))  # not a configured category
    read_all(reader(fake, store))
    assert labels(store) == []
