"""Signed webhooks end to end: routed cases and incidents through the outbox to a receiving system that
checks the signature and drops repeats by idempotency key."""

import json

import httpx
import pytest

from tests.fakes.webhook_receiver import FakeWebhookReceiver
from tests.receivers.routed import crash_after_send, outbox, route_case, statuses, tree_of, wait_for
from triage.receivers.webhook import signature
from triage.settings import Settings

ROUTING = """
receivers:
  - {name: log, console: {}}
  - name: ops
    webhook: {url: "%s", secret: TEST_WEBHOOK_SECRET}
route:
  receiver: log
  routes:
    - matchers: ['urgency >= high', 'customer.tier = enterprise']
      receiver: ops
%s
"""
GROUPED = """      group_by: [category]
      group_wait: 0s
      group_idle: 3s"""


@pytest.fixture
def hook(monkeypatch):
    with FakeWebhookReceiver() as fake:
        monkeypatch.setenv("TEST_WEBHOOK_SECRET", fake.secret)
        yield fake


@pytest.fixture
def settings(tmp_path):
    return Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")


def test_a_routed_case_arrives_signed_with_its_matchers_and_links(hook, settings, store):
    tree = tree_of(ROUTING % (hook.url, ""))
    [delivery] = route_case(
        store,
        tree,
        "Checkout is down, call me at +1 415 555 0100 or dana@acme.example",
        customer={"id": "cust-7", "name": "Dana", "tier": "enterprise"},
        ticket={"id": 48211, "url": "https://acme.zendesk.com/agent/tickets/48211"},
    )
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("ops", "sent", 1)], "the webhook")
    [body] = hook.received
    assert hook.rejected == 0 and hook.headers[0]["idempotency-key"] == f"triage/delivery/{delivery.id}"
    assert (body["kind"], body["status"], body["receiver"]) == ("case", "firing", "ops")
    assert body["idempotencyKey"] == f"triage/delivery/{delivery.id}"
    assert body["groupKey"] == f"triage/case/{delivery.message_id}"
    assert body["matchers"] == ["urgency >= high", "customer.tier = enterprise"]
    assert body["links"] == [{"href": "https://acme.zendesk.com/agent/tickets/48211", "text": "Ticket 48211"}]
    [case] = body["alerts"]
    assert case["labels"]["urgency"] == "urgent" and case["labels"]["customer_tier"] == "enterprise"
    excerpt = case["annotations"]["excerpt"]
    assert "555 0100" not in excerpt and "dana@acme.example" not in excerpt  # PII masked, as Slack's


def test_a_forged_or_replayed_request_is_refused_by_the_receiving_system(hook):
    raw = json.dumps({"idempotencyKey": "k", "groupKey": "g", "status": "firing"}).encode()
    forged = {
        "X-Triage-Timestamp": "1700000000",
        "X-Triage-Signature": signature(hook.secret, "1700000000", raw),
    }
    answer = httpx.post(hook.url, content=raw, headers={**forged, "Idempotency-Key": "k"})
    assert answer.status_code == 401 and hook.received == []  # signed, but too old: a replay


def test_a_resend_after_a_crash_carries_the_same_idempotency_key(hook, settings, store):
    tree = tree_of(ROUTING % (hook.url, ""))
    route_case(store, tree, "Checkout is down", customer={"tier": "enterprise"})
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("ops", "sent", 1)], "the first send")
    crash_after_send(store)
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("ops", "sent", 2)], "the resend")
    assert len(hook.received) == 1 and hook.repeats == 1  # the receiving system dropped the repeat


def test_an_incident_fires_once_and_resolves_when_idle(hook, settings, store):
    tree = tree_of(ROUTING % (hook.url, GROUPED))
    with outbox(settings, store, tree):
        for n in range(3):
            route_case(
                store, tree, f"Checkout down ({n})", conversation_id=f"c{n}", customer={"tier": "enterprise"}
            )
        wait_for(lambda: "resolved" in hook.groups.values(), "the resolve", timeout_s=60)
    [group] = hook.groups
    assert group.startswith("triage/incident/") and hook.groups[group] == "resolved"
    assert {body["groupKey"] for body in hook.received} == {group}
    assert hook.received[-1]["kind"] == "incident" and hook.received[-1]["incident"]["cases"] == 3


def test_429_is_waited_out_and_sent_once(hook, settings, store):
    hook.fail_next(429, retry_after=1)
    tree = tree_of(ROUTING % (hook.url, ""))
    route_case(store, tree, "Checkout is down", customer={"tier": "enterprise"})
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("ops", "sent", 2)], "the send after the 429")
    assert hook.rejected_429 == 1 and len(hook.received) == 1 and hook.repeats == 0


def test_a_wrong_secret_is_refused_and_retried_not_lost(hook, settings, store, monkeypatch):
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", "not-the-shared-secret")
    tree = tree_of(ROUTING % (hook.url, ""))
    route_case(store, tree, "Checkout is down", customer={"tier": "enterprise"})
    with outbox(settings, store, tree):
        wait_for(lambda: hook.rejected >= 1, "the refusal")
    assert hook.received == [] and statuses(store)[0][1] in ("pending", "sending")
