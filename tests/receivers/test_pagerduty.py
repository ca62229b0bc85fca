"""PagerDuty receivers end to end: routed cases through the outbox to the Events API v2 stand-in."""

import time

import pytest

from tests.fakes.pagerduty_server import FakePagerDuty
from tests.receivers.routed import (
    crash_after_send,
    judged,
    outbox,
    route_case,
    senders,
    statuses,
    tree_of,
    wait_for,
)
from triage.receivers import pagerduty
from triage.receivers.base import SkippingSender
from triage.receivers.events import case_key
from triage.receivers.registry import Receivers
from triage.settings import Settings
from triage.store import Store

ROUTING = """
receivers:
  - {name: log, console: {}}
  - {name: pager, pagerduty: {routing_key: TEST_PD_ROUTING_KEY}}
route:
  receiver: log
  routes:
    - matchers: ['urgency >= high']
      receiver: pager
"""
GROUPED = """
receivers:
  - {name: log, console: {}}
  - {name: pager, pagerduty: {routing_key: TEST_PD_ROUTING_KEY}}
route:
  receiver: log
  routes:
    - matchers: ['urgency >= high']
      receiver: pager
      group_by: [category]
      group_wait: 0s
      group_idle: 3s
"""


@pytest.fixture
def pd(monkeypatch):
    with FakePagerDuty() as fake:
        monkeypatch.setenv("TEST_PD_ROUTING_KEY", next(iter(fake.routing_keys)))
        yield fake


@pytest.fixture
def settings(pd, tmp_path):
    return Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", pagerduty={"events_url": pd.events_url})


def test_a_routed_case_triggers_one_alert_keyed_by_its_message(pd, settings, store):
    tree = tree_of(ROUTING)
    [delivery] = route_case(
        store,
        tree,
        "Checkout returns 503 for everyone",
        ticket={"id": 48211, "url": "https://acme.zendesk.com/agent/tickets/48211"},
        customer={"name": "Dana", "tier": "enterprise"},
    )
    with outbox(settings, store, tree):
        wait_for(lambda: pd.alerts, "the PagerDuty alert")
        wait_for(lambda: statuses(store) == [("pager", "sent", 1)], "the delivery marked sent")
    [alert] = pd.alerts
    [event] = alert["events"]
    assert alert["dedup_key"] == f"triage/case/{delivery.message_id}" == case_key(delivery.message_id)
    assert alert["status"] == "triggered" and alert["severity"] == "critical"
    assert event["payload"]["summary"].startswith("URGENT · outage · Dana (enterprise)")
    assert (
        event["payload"]["custom_details"]["Why"] == "urgency >= high (route.routes[0] in the routing file)"
    )
    assert event["links"] == [
        {"href": "https://acme.zendesk.com/agent/tickets/48211", "text": "Ticket 48211"}
    ]


def test_a_resend_after_a_crash_adds_to_the_same_alert(pd, settings, store):
    tree = tree_of(ROUTING)
    route_case(store, tree, "Checkout is down")
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("pager", "sent", 1)], "the first send")
    crash_after_send(store)  # PagerDuty got it; the worker died before marking it sent
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("pager", "sent", 2)], "the resend")
    assert len(pd.events) == 2 and len({event["dedup_key"] for event in pd.events}) == 1
    assert len(pd.alerts) == 1  # one PagerDuty alert, whatever the resends


def test_429_is_waited_out_and_the_alert_sent_once(pd, settings, store):
    pd.fail_next(429, retry_after=2)
    tree = tree_of(ROUTING)
    route_case(store, tree, "Checkout is down")
    started = time.monotonic()
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("pager", "sent", 2)], "the send after the 429")
    assert time.monotonic() - started >= 2  # Retry-After was honoured
    assert pd.rejected_429 == 1 and len(pd.events) == 1 and len(pd.alerts) == 1


def test_an_incident_is_one_alert_updated_and_resolved_when_idle(pd, settings, database_url):
    store = Store(database_url)  # SQLite and PostgreSQL: incidents lock and store differently
    store.upgrade()
    tree = tree_of(GROUPED)
    with outbox(settings, store, tree):
        for n in range(3):
            route_case(store, tree, f"Checkout down here too ({n})", conversation_id=f"c{n}")
        wait_for(lambda: pd.alerts and pd.alerts[0]["status"] == "resolved", "the resolve", timeout_s=60)
    [alert] = pd.alerts
    keys = {event["dedup_key"] for event in alert["events"]}
    assert len(keys) == 1 and next(iter(keys)).startswith("triage/incident/")
    actions = [event["event_action"] for event in alert["events"]]
    assert actions[0] == "trigger" and actions[-1] == "resolve"
    update = alert["events"][-2]["payload"]
    assert update["summary"].startswith("Incident: URGENT · outage · 3 cases")  # every case counted
    assert sorted(status for _, status, _ in statuses(store)) == ["grouped", "grouped", "sent"]


def test_taking_a_case_acknowledges_its_alert_and_solving_it_resolves_it(pd, settings, store):
    tree = tree_of(ROUTING)
    [delivery] = route_case(store, tree, "Checkout is down")
    assert pagerduty.follow_up(store, tree, delivery.message_id, "acknowledge") == 1  # taken at once
    assert pagerduty.follow_up(store, tree, delivery.message_id, "acknowledge") == 1  # a repeat: queued once
    with outbox(settings, store, tree):
        wait_for(lambda: pd.alerts and pd.alerts[0]["status"] == "acknowledged", "the acknowledge")
        assert pagerduty.follow_up(store, tree, delivery.message_id, "resolve") == 1
        wait_for(lambda: pd.alerts[0]["status"] == "resolved", "the resolve")
        wait_for(lambda: all(status == "sent" for _, status, _ in statuses(store)), "every delivery sent")
    actions = [event["event_action"] for event in pd.events]
    assert actions == ["trigger", "acknowledge", "resolve"]  # the acknowledge waited for its trigger
    assert {event["dedup_key"] for event in pd.events} == {case_key(delivery.message_id)}
    assert len(pd.alerts) == 1


def test_a_case_that_paged_no_one_has_nothing_to_acknowledge(pd, settings, store):
    tree = tree_of(ROUTING)
    [delivery] = route_case(store, tree, "A question", triage=judged("low"))
    assert delivery.receiver == "log"
    assert pagerduty.follow_up(store, tree, delivery.message_id, "acknowledge") == 0


def test_an_event_pagerduty_refuses_is_skipped_with_its_reason(pd, settings, store, monkeypatch):
    monkeypatch.setenv("TEST_PD_ROUTING_KEY", "a-key-pagerduty-does-not-know")
    tree = tree_of(ROUTING)
    route_case(store, tree, "Checkout is down")
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("pager", "skipped", 1)], "the refusal")
    assert pd.alerts == []


def test_a_routing_key_variable_not_set_is_said_at_start(settings, store, monkeypatch):
    monkeypatch.delenv("TEST_PD_ROUTING_KEY")
    tree = tree_of(ROUTING)
    assert isinstance(senders(settings, store, tree)["pager"], SkippingSender)
    idle = Receivers(settings, None, store).idle(tree)  # type: ignore[arg-type]
    assert idle == [("pager (PagerDuty)", "the environment variable TEST_PD_ROUTING_KEY is not set")]
