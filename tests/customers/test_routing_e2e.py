"""A route on the customer's history, end to end: the worker, the broker, a webhook stand-in."""

import json
import threading

import pytest

from tests.conftest import produce
from tests.fakes.webhook_receiver import FakeWebhookReceiver
from tests.test_worker import wait_until
from triage.routing import parse_routing
from triage.routing.yamlfile import RoutingError
from triage.settings import Settings
from triage.store import Store
from triage.worker import Worker

ROUTING = """
receivers:
  - {name: log, console: {}}
  - {name: repeat, webhook: {url: "%s", secret: CUSTOMERS_HOOK_SECRET}}
route:
  receiver: log
  routes:
    - {matchers: ['customer.contacts_24h >= 3'], receiver: repeat}
"""

# Dana writes by e-mail, then by chat (the widget knows her id and address), then by chat again
CONTACTS = [
    {"id": "dana-1", "channel": "email", "customer": {"email": "Dana@Example.com", "name": "Dana W"}},
    {"id": "dana-2", "channel": "chat", "customer": {"id": "c-9", "email": "dana@example.com"}},
    {"id": "dana-3", "channel": "chat", "customer": {"id": "c-9"}},
]
TIMES = ["2026-03-02T08:00:00Z", "2026-03-02T09:30:00Z", "2026-03-02T10:00:00Z"]


def test_a_route_on_contacts_24h_fires_on_the_third_contact_not_the_second(
    settings: Settings, tmp_path, monkeypatch
):
    with FakeWebhookReceiver() as hook:
        monkeypatch.setenv("CUSTOMERS_HOOK_SECRET", hook.secret)
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING % hook.url)
        settings.routing_file = routing
        worker = Worker.from_settings(settings)
        thread = threading.Thread(target=worker.run, kwargs={"until": lambda s: s.handled >= 3})
        thread.start()
        store = Store(settings.database_url)
        try:
            for contact, at in zip(CONTACTS, TIMES, strict=True):
                value = {**contact, "body": "My invoice is wrong, I was charged twice", "created_at": at}
                produce(settings.kafka, [json.dumps(value).encode()])
                wait_until(lambda c=contact: store.is_processed(c["id"]), f"{contact['id']} to be triaged")
            wait_until(lambda: store.count_due() == 0, "the deliveries")
        finally:
            worker.stop()
            thread.join()
        results = {message.id: result for message, result in store.results([c["id"] for c in CONTACTS])}
    assert [results[c["id"]].receivers for c in CONTACTS] == [["log"], ["log"], ["repeat"]]
    assert [results[c["id"]].customer_history["contacts_24h"] for c in CONTACTS] == [1, 2, 3]
    [sent] = hook.received
    assert sent["alerts"][0]["labels"]["message_id"] == "dana-3"
    assert sent["matchers"] == ["customer.contacts_24h >= 3"]
    facts = sent["alert"]["facts"]
    urgent = [r.urgency for r in results.values()].count("high")  # the rules classifier's call
    assert urgent == 3
    assert facts["Customer history"] == "3rd contact in 24 h · chat, e-mail · 2 other urgent cases this week"
    assert facts["Earlier case"].startswith("dana-2 ")  # the same problem, two contacts ago and before


@pytest.mark.parametrize(
    ("matcher", "problem"),
    [
        ("customer.contacts_24: 3", "cannot parse matcher"),
        ("customer.contacts_24h >= three", "compares numbers"),
        ("customer.contact_24h >= 3", "did you mean customer.contacts_24h"),
        (
            "customer.sentiment_trend = worse",
            "customer.sentiment_trend is one of worsening, steady, improving",
        ),
        ("customer.urgent_7d = urgent", None),  # equality with text: allowed, as for any free field
    ],
)
def test_history_matchers_are_checked_like_every_matcher(matcher, problem):
    text = "receivers: [{name: log, console: {}}]\nroute:\n  receiver: log\n  routes:\n"
    text += f"    - {{matchers: [{json.dumps(matcher)}], receiver: log}}\n"
    if problem is None:
        parse_routing(text)
        return
    with pytest.raises(RoutingError, match=problem):
        parse_routing(text)


def test_history_matchers_match_the_case():
    tree = parse_routing(
        "receivers: [{name: log, console: {}}, {name: cx, console: {}}]\n"
        "route:\n  receiver: log\n  routes:\n"
        "    - matchers: ['customer.sentiment_trend = worsening', 'customer.urgent_7d >= 1']\n"
        "      receiver: cx\n"
    )
    case = {"customer.sentiment_trend": "worsening", "customer.urgent_7d": 1}
    assert tree.route(case) == ["cx"]
    assert tree.route({**case, "customer.urgent_7d": 0}) == ["log"]
    assert tree.route({"customer.sentiment_trend": "steady", "customer.urgent_7d": 2}) == ["log"]
    assert tree.route({}) == ["log"]  # no history (switched off, no customer): never matches
