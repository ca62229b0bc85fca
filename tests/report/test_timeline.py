"""`triage report --customer ID`: one customer's timeline through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triage.cli import app
from triage.customers import identities
from triage.message import Customer
from triage.store import Store
from triage.store.feedback import Correction, FeedbackStore
from triage.store.tables import DeliveryRow, LabelRow, MessageRow, TriageRow

T0 = datetime(2026, 11, 18, 9, tzinfo=UTC)


def save(
    store: Store,
    message_id: str,
    at: datetime,
    customer: Customer,
    body: str,
    *,
    hashed: bool,
    channel: str = "email",
    survey: tuple[str, int] | None = None,
    alert: str | None = None,
) -> None:
    """A message as the worker stores it: linked to its customer by its identities."""
    stored = store.save_triaged(
        MessageRow(
            id=message_id,
            conversation_id=message_id,
            channel=channel,
            customer_id=customer.id,
            created_at=at,
            received_at=at + timedelta(seconds=1),
            raw="{}",
            parsed={"id": message_id, "body": body, "subject": None},
            kafka_topic="support.messages",
            kafka_partition=0,
            kafka_offset=0,
            survey_type=survey[0] if survey else None,
            survey_score=survey[1] if survey else None,
        ),
        TriageRow(
            message_id=message_id,
            urgency="high" if alert else "low",
            sentiment="negative",
            category="billing",
            language="en",
            summary=f"summary of {body}",
            confidence=0.9,
            model="test",
            receivers=[alert] if alert else [],
            triaged_at=at + timedelta(seconds=2),
        ),
        [
            DeliveryRow(
                message_id=message_id,
                receiver=alert,
                conversation_id=message_id,
                status="sent",
                payload={},
                created_at=at + timedelta(seconds=2),
                sent_at=at + timedelta(seconds=5),
            )
        ]
        if alert
        else [],
        identities(customer, hashed=hashed),
    )
    assert stored


def fill(store: Store, hashed: bool) -> None:
    dana = Customer(id="c-9", email="dana.w@example.com")
    save(store, "m1", T0, dana, "Charged twice for March", hashed=hashed, alert="oncall")
    # a day later by chat, with only the address (written otherwise): the same customer
    chat = Customer(email=" Dana.W@Example.COM")
    save(store, "m2", T0 + timedelta(days=1), chat, "Still no refund", hashed=hashed, channel="chat")
    save(store, "m3", T0 + timedelta(days=2), chat, "", hashed=hashed, channel="survey", survey=("nps", 3))
    # the same name, another address: another person
    other = Customer(id="c-10", name="Dana W", email="dana@elsewhere.example")
    save(store, "x1", T0 + timedelta(hours=5), other, "Other person", hashed=hashed)
    label = LabelRow(
        message_id="m1",
        field="urgency",
        model_value="high",
        team_value="urgent",
        source="slack",
        person_id="U1",
        person_name="ana",
        event_key="slack:m1:urgency",
        labelled_at=T0 + timedelta(minutes=10),
    )
    FeedbackStore(store).save([Correction([label])])


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database_url)
    store = Store(database_url)
    store.upgrade()

    def invoke(*args: str, hashed: bool = False):
        if hashed:
            monkeypatch.setenv("TRIAGE_STORE_ORIGINAL_TEXT", "false")
        return CliRunner().invoke(app, ["report", *args])

    yield store, invoke
    store.close()


def test_the_timeline_follows_the_customer_across_channels_in_order(run):
    store, invoke = run
    fill(store, hashed=False)
    result = invoke("--customer", "c-9")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "customer c-9 (key id:c-9): 3 messages"
    assert [line.split()[2:4] for line in lines[1:]] == [
        ["message", "m1"],
        ["triage", "m1"],
        ["alert", "m1"],
        ["label", "m1"],
        ["message", "m2"],
        ["triage", "m2"],
        ["survey", "m3"],
        ["triage", "m3"],
    ]
    assert "Charged twice for March" in lines[1] and "oncall · sent" in lines[3]
    assert "urgency: high → urgent" in lines[4] and "NPS 3 (detractor)" in lines[7]
    assert "Other person" not in result.stdout and "x1" not in result.stdout

    by_address = invoke("--customer", "DANA.W@example.com", "--format", "json")
    assert by_address.exit_code == 0, by_address.output
    document = json.loads(by_address.stdout)
    assert document["customer_key"] == "id:c-9"
    assert [(event["kind"], event["message_id"]) for event in document["events"]][:2] == [
        ("message", "m1"),
        ("triage", "m1"),
    ]
    assert document["events"][0]["at"] == "2026-11-18T09:00:00Z"


def test_no_text_is_shown_when_the_store_keeps_none(run):
    store, invoke = run
    fill(store, hashed=True)
    result = invoke("--customer", "c-9", hashed=True)
    assert result.exit_code == 0, result.output
    assert "m1" in result.stdout and "m3" in result.stdout and "NPS 3" in result.stdout
    for text in ("Charged twice", "Still no refund", "summary of", "dana", "c-9)"):
        assert text not in result.stdout.split("\n", 1)[1], text
    assert "(key sha256:" in result.stdout


def test_an_unknown_customer_is_one_line_and_status_2(run):
    store, invoke = run
    fill(store, hashed=False)
    result = invoke("--customer", "nobody@example.com")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: no customer 'nobody@example.com' in the store (an id, e-mail address or phone number)"
    ]
