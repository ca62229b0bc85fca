"""A store told to keep no original text (TRIAGE_STORE_ORIGINAL_TEXT=false) holds no address of the
customer anywhere, while routes on the address and the history still work."""

import json

from sqlalchemy import select

from tests.conftest import produce
from tests.customers.test_forget import everything
from tests.test_worker import run_until_handled
from triage.settings import Settings
from triage.store import Store
from triage.store.tables import DeliveryRow

ROUTING = """
receivers: [{name: log, console: {}}, {name: vip, console: {}}]
route:
  receiver: log
  routes:
    - {matchers: ['customer.email = dana@example.com', 'customer.phone =~ ".*2030"'], receiver: vip}
"""


def test_no_address_in_any_table_and_routes_still_match(settings: Settings, tmp_path):
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    settings.routing_file = routing
    settings.store_original_text = False
    customer = {"email": "dana@example.com", "phone": "+1 (555) 010-2030"}
    values = [
        {"id": "p-1", "channel": "email", "body": "Write to dana@example.com", "customer": customer},
        {"id": "p-2", "channel": "chat", "body": "Hello again", "customer": {"phone": "+1 555.010.2030"}},
    ]
    # one conversation in one partition, so in order (two at once need not see each other's history)
    values = [{**value, "conversation_id": "conv-p"} for value in values]
    produce(settings.kafka, [json.dumps(v).encode() for v in values], key=b"conv-p")
    run_until_handled(settings, 2)
    store = Store(settings.database_url)
    stored = everything(store)
    for personal in ("dana@example.com", "5550102030", "010-2030", "010 2030"):
        assert personal not in stored
    [(_, first), (_, second)] = store.results(["p-1", "p-2"])
    assert first.receivers == ["vip"]  # matched on the message as received
    assert second.customer_history["contacts_24h"] == 2  # the phone linked p-2 to p-1's customer
    assert second.customer_history["channels_7d"] == ["chat", "email"]
    with store.session() as session:
        why = session.scalars(select(DeliveryRow.payload).where(DeliveryRow.receiver == "vip")).one()
    assert why["route_matchers"] == ["customer.email = [hidden]", "customer.phone =~ [hidden]"]
