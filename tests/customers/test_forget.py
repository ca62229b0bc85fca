"""`triage forget`: no row and no string of the customer left in any table, on SQLite and PostgreSQL;
everyone else's rows untouched."""

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import produce
from tests.test_cli import TRIAGE, triage_env
from tests.test_worker import run_until_handled
from triage.settings import Settings
from triage.store import Store
from triage.store.forget import forget_customer
from triage.store.tables import (
    AcknowledgementRow,
    Base,
    DeadLetterRow,
    DeliveryRow,
    EscalationRow,
    IncidentRow,
    IngestedRow,
    LabelRow,
    ReceiptRow,
    SilenceRow,
    SlackThreadRow,
)

ROUTING = "receivers: [{name: log, console: {}}]\nroute: {receiver: log}\n"
DANA = [
    {
        "id": "m-d1",
        "conversation_id": "conv-d1",
        "channel": "email",
        "body": "Order 5521 never arrived, please call me back",
        "customer": {"name": "Dana Whitfield", "email": "Dana.Whitfield@Example.com"},
    },
    {
        "id": "m-d2",
        "channel": "chat",
        "body": "Still no parcel for order 5521, this is the third time I ask",
        "customer": {"id": "cust-dana-77", "email": "dana.whitfield@example.com", "name": "Dana Whitfield"},
    },
    {
        "id": "m-d3",
        "channel": "phone",
        "body": "Voicemail: the courier lost my parcel",
        "customer": {"id": "cust-dana-77", "phone": "+1 (555) 010-2030"},
    },
]
SAM = {
    "id": "m-s1",
    "channel": "email",
    "body": "Where is my refund for the blue kettle",
    "customer": {"id": "cust-sam-12", "email": "sam@example.org", "name": "Sam Okafor"},
}
# every string of Dana's: her id, addresses, name, words of her messages
DANA_STRINGS = [
    "cust-dana-77",
    "dana.whitfield@example.com",
    "5550102030",
    "010-2030",
    "dana whitfield",
    "5521",
    "courier lost",
    "m-d1",
    "m-d2",
    "m-d3",
    "conv-d1",
]
SAM_STRINGS = ["cust-sam-12", "sam@example.org", "sam okafor", "blue kettle", "m-s1"]


def everything(store: Store) -> str:
    """Every column of every row of every table, as lower-case text."""
    parts = []
    with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                parts.extend(json.dumps(value, default=str) for value in row)
    return "\n".join(parts).lower()


def fill(settings: Settings, store: Store) -> None:
    """Dana's three contacts and Sam's one through the worker, then the rows people and other parts add."""
    produce(settings.kafka, [json.dumps(m).encode() for m in [*DANA, SAM]])
    run_until_handled(settings, 4)
    now = datetime.now(UTC)
    with store.session() as session:
        deliveries = {d.message_id: d for d in session.scalars(select(DeliveryRow))}
        dana, sam = deliveries["m-d1"], deliveries["m-s1"]
        alone = IncidentRow(
            uid="inc-dana",
            receiver="log",
            group_key="customer.name=Dana Whitfield",
            mode="alert",
            first_case_at=now,
            last_case_at=now,
            closes_at=now + timedelta(hours=1),
            top_urgency="high",
            interval_s=60,
        )
        shared = IncidentRow(
            uid="inc-shared",
            receiver="log",
            group_key="category=shipping",
            mode="alert",
            first_case_at=now,
            last_case_at=now,
            closes_at=now + timedelta(hours=1),
            top_urgency="high",
            interval_s=60,
        )
        session.add_all([alone, shared])
        session.flush()
        session.execute(update(DeliveryRow).where(DeliveryRow.id == dana.id).values(incident_id=alone.id))
        second = deliveries["m-d2"]
        session.execute(
            update(DeliveryRow).where(DeliveryRow.id.in_([second.id, sam.id])).values(incident_id=shared.id)
        )
        for delivery in (dana, sam):
            session.add(
                ReceiptRow(
                    delivery_id=delivery.id,
                    message_id=delivery.message_id,
                    system="slack",
                    place="C1",
                    ref=f"{delivery.id}.1",
                )
            )
            session.add(
                EscalationRow(
                    source_delivery_id=delivery.id,
                    subject=f"message:{delivery.message_id}",
                    receiver="log",
                    status="sent",
                )
            )
            session.add(
                AcknowledgementRow(
                    subject=f"message:{delivery.message_id}",
                    message_id=delivery.message_id,
                    who="ana",
                    how="slack",
                    acked_at=now,
                )
            )
            session.add(
                LabelRow(
                    message_id=delivery.message_id,
                    field="urgency",
                    model_value="normal",
                    team_value="high",
                    source="slack",
                    person_id="U1",
                    person_name="Ana",
                    event_key=f"slack:{delivery.message_id}",
                    labelled_at=now,
                )
            )
        session.add(
            AcknowledgementRow(
                subject=f"incident:{alone.id}", incident_id=alone.id, who="ana", how="slack", acked_at=now
            )
        )
        session.add(
            SlackThreadRow(
                conversation_id="conv-d1",
                channel="C1",
                thread_ts="1.1",
                top_urgency="high",
                last_notified_at=now,
            )
        )
        session.add(
            SlackThreadRow(
                conversation_id="m-s1",
                channel="C1",
                thread_ts="2.1",
                top_urgency="high",
                last_notified_at=now,
            )
        )
        session.add_all(
            [IngestedRow(message_id=m, claimed_at=now, produced_at=now) for m in ("m-d2", "m-s1")]
        )
        session.add(
            DeadLetterRow(
                kafka_topic="in",
                kafka_partition=0,
                kafka_offset=7,
                code="invalid_schema",
                detail="customer.email: Dana.Whitfield@example.com is not allowed",
                claimed_by="w",
            )
        )
        session.add(
            DeadLetterRow(
                kafka_topic="in",
                kafka_partition=0,
                kafka_offset=8,
                code="invalid_json",
                detail="Expecting value at line 1",
                claimed_by="w",
            )
        )
        session.add(
            SilenceRow(
                id="s-dana",
                matchers=["customer.id = cust-dana-77"],
                starts_at=now,
                ends_at=now + timedelta(days=1),
                created_by="ana",
            )
        )
        session.add(
            SilenceRow(
                id="s-other",
                matchers=["category = spam"],
                starts_at=now,
                ends_at=now + timedelta(days=1),
                created_by="ana",
            )
        )


@pytest.fixture
def filled(settings: Settings, database_url: str, tmp_path):
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    settings.routing_file = routing
    settings.database_url = database_url
    store = Store(database_url)
    store.upgrade()
    fill(settings, store)
    yield settings, store
    store.close()


def test_forget_leaves_no_row_and_no_string_of_the_customer(filled):
    settings, store = filled
    before = everything(store)
    assert all(text in before for text in DANA_STRINGS + SAM_STRINGS)  # the scan sees them at all
    env = triage_env(settings.kafka, settings.database_url)
    done = subprocess.run(
        [*TRIAGE, "forget", "--email", " DANA.Whitfield@example.com"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    said = dict(line.split() for line in done.stdout.splitlines()[1:])
    assert said["messages"] == "3" and said["triage_results"] == "3" and said["customer_identities"] == "3"
    assert said["deliveries"] == "6" and said["labels"] == "1" and said["incidents"] == "1"
    assert said["dead_letters"] == "1" and said["silences"] == "1" and said["slack_threads"] == "1"
    after = everything(store)
    assert [text for text in DANA_STRINGS if text in after] == []
    assert [text for text in SAM_STRINGS if text not in after] == []  # nobody else's rows went
    assert "inc-shared" in after and "expecting value" in after and "category = spam" in after
    again = subprocess.run(
        [*TRIAGE, "forget", "--customer", "cust-dana-77"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and "nothing removed" in again.stdout


def test_forget_by_phone_finds_a_customer_stored_as_digests(settings: Settings, database_url, tmp_path):
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    settings.routing_file = routing
    settings.database_url = database_url
    settings.store_original_text = False
    store = Store(database_url)
    store.upgrade()
    produce(settings.kafka, [json.dumps(m).encode() for m in [*DANA, SAM]])
    run_until_handled(settings, 4)
    before = everything(store)
    assert "dana.whitfield@example.com" not in before and "5550102030" not in before  # digests only
    removed = forget_customer(store, phone="+1 555 010 2030")
    assert removed["messages"] == 3
    after = everything(store)
    assert [text for text in DANA_STRINGS if text in after] == []
    assert "cust-sam-12" in after and "m-s1" in after


def test_forget_needs_a_customer(settings: Settings):
    env = triage_env(settings.kafka, settings.database_url)
    done = subprocess.run([*TRIAGE, "forget"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: name the customer")
