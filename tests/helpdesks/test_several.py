"""Several helpdesks at once: each ticket is written in the helpdesk its message names."""

from __future__ import annotations

import pytest

from tests.fakes.freshdesk_server import FakeFreshdesk
from tests.fakes.gorgias_server import FakeGorgias
from tests.fakes.kustomer_server import FakeKustomer
from tests.fakes.zendesk_server import FakeZendesk
from tests.helpdesks.conftest import settings_for
from tests.receivers.conftest import claim_one, store_case
from triage.helpdesks import configured
from triage.helpdesks.base import HelpdeskConfigError
from triage.receivers.helpdesk import HelpdeskSender, check_all
from triage.routing.tree import HelpdeskReceiver
from triage.store.incidents import Incidents


def test_each_ticket_goes_to_the_helpdesk_its_message_names(store):
    with (
        FakeZendesk() as zendesk,
        FakeGorgias() as gorgias,
        FakeKustomer() as kustomer,
        FakeFreshdesk() as freshdesk,
    ):
        env = zendesk.env() | gorgias.env() | kustomer.env() | freshdesk.env()
        desks = configured(settings_for(env))
        assert sorted(desks) == ["freshdesk", "gorgias", "kustomer", "zendesk"]
        sender = HelpdeskSender(desks, HelpdeskReceiver(), Incidents(store))
        for system, ticket in (("zendesk", 1), ("gorgias", 2), ("kustomer", 3), ("freshdesk", 4)):
            store_case(store, "desk", ticket={"system": system, "id": ticket}, conversation=system)
        outcomes = [sender.send_batch([claim_one(store, "desk")])[0] for _ in range(4)]
        assert [o.status for o in outcomes] == ["sent"] * 4
        assert list(zendesk.comments) == [1]
        assert [t for t, notes in gorgias.notes.items() if notes] == ["2"]
        assert [t for t, notes in kustomer.notes.items() if notes] == ["3"]
        assert [t for t, notes in freshdesk.notes.items() if notes] == ["4"]

        store_case(store, "desk", ticket={"id": 5}, conversation="none")  # which of the four?
        [outcome] = sender.send_batch([claim_one(store, "desk")])
        assert outcome.status == "skipped" and "names no ticket.system and 4 helpdesks" in outcome.detail


def test_two_bad_credentials_are_two_lines():
    with FakeGorgias() as gorgias, FakeFreshdesk() as freshdesk:
        env = gorgias.env() | freshdesk.env()
        env["TRIAGE_GORGIAS__API_KEY"] = env["TRIAGE_FRESHDESK__API_KEY"] = "wrong"
        with pytest.raises(HelpdeskConfigError) as refused:
            check_all(configured(settings_for(env)))
    lines = str(refused.value).splitlines()
    assert len(lines) == 2
    assert "TRIAGE_GORGIAS__EMAIL / TRIAGE_GORGIAS__API_KEY" in lines[0]
    assert "TRIAGE_FRESHDESK__API_KEY" in lines[1]
