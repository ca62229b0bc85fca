"""`triage routes test` shows, for each case, the silences (active, from the store) and inhibit rules it
would meet and the escalation it would get (config/routing-oncall.yaml and its cases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triage.cli import app
from triage.store import Store
from triage.store.tables import DeliveryRow, IncidentRow, MessageRow, TriageRow

REPO = Path(__file__).resolve().parents[2]
ROUTING = REPO / "config" / "routing-oncall.yaml"
CASES = REPO / "config" / "routing-tests" / "oncall.yaml"


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps long lines


def by_case(output: str) -> dict[str, str]:
    """What is printed under each case, by the case's name."""
    parts = output.split("PASS ")[1:]
    return {part.split(":", 1)[0]: part for part in parts}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    monkeypatch.chdir(REPO)  # the project's categories
    store = Store(url)
    store.upgrade()
    return store


def open_outage_incident(store: Store) -> int:
    """An outage incident on `oncall`, open ten more minutes (its first case stored as the worker does)."""
    now = datetime.now(UTC)
    message = MessageRow(id="m-first", conversation_id="c1", channel="chat", customer_id="cust-1",
        received_at=now, raw="{}", parsed={"id": "m-first", "conversation_id": "c1", "body": "down"},
        kafka_topic="support.messages", kafka_partition=0, kafka_offset=0)  # fmt: skip
    result = TriageRow(message_id="m-first", urgency="urgent", sentiment="negative", category="outage",
        language="en", summary="down", confidence=0.9, model="test", receivers=["oncall"],
        triaged_at=now)  # fmt: skip
    assert store.save_triaged(message, result, [])
    with store.session() as session:
        incident = IncidentRow(uid="inc-outage", receiver="oncall", mode="alert",
            group_key='route.routes[0] {"category": "outage"}', first_case_at=now, last_case_at=now,
            closes_at=now + timedelta(minutes=10), top_urgency="urgent", interval_s=300)  # fmt: skip
        session.add(incident)
        session.flush()
        session.add(DeliveryRow(message_id="m-first", receiver="oncall", conversation_id="c1", status="sent",
            payload={}, incident_id=incident.id, incident_seq=1))  # fmt: skip
        return incident.id


def test_a_case_shows_its_silence_its_inhibition_and_its_escalation(store: Store):
    silence_id = run(
        "silence", "add", "category = outage", "--for", "2h", "--comment", "known: provider down"
    )
    silence_id = silence_id.strip()
    incident_id = open_outage_incident(store)

    cases = by_case(run("routes", "test", str(CASES), "--routing", str(ROUTING)))

    outage = cases["an urgent outage on chat is one incident, escalated to PagerDuty, and held elsewhere"]
    assert f"silenced by {silence_id} (category = outage) until " in outage
    assert "(in 1h59m): known: provider down" in outage or "(in 2h): known: provider down" in outage
    assert "inhibit_rules[0]: its alerts are held while an incident with category = outage is open" in outage
    assert f"held now: ops-hook by incident {incident_id} (oncall)" in outage
    assert f"held now: teams by incident {incident_id} (oncall)" in outage
    assert "held now: oncall" not in outage  # an incident does not hold back its own receiver
    assert "oncall (route.routes[0]): not taken within 10m of its alert, escalated to pager" in outage

    billing = cases["a high billing case by e-mail goes to on-call, escalated to the CX lead"]
    assert "oncall (route.routes[3]): not taken within 15m of its alert, escalated to cx-lead" in billing
    assert "silenced" not in billing and "inhibit_rules" not in billing  # not an outage
    calm = cases["a calm how-to question is only logged"]
    assert "silenced" not in calm and "escalated" not in calm


def test_an_expired_silence_is_not_shown(store: Store):
    silence_id = run("silence", "add", "category = outage", "--for", "2h").strip()
    assert run("silence", "expire", silence_id) == f"expired {silence_id}"
    output = run("routes", "test", str(CASES), "--routing", str(ROUTING))
    assert "silenced by" not in output
    assert "escalated to pager" in output


def test_without_a_store_the_rules_still_show_and_one_line_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TRIAGE_DATABASE_URL", f"sqlite:///{tmp_path / 'missing.db'}")
    monkeypatch.chdir(REPO)
    output = run("routes", "test", str(CASES), "--routing", str(ROUTING))
    assert output.count("silences and open incidents not read: no store at") == 1
    assert "inhibit_rules[0]: its alerts are held" in output and "escalated to cx-lead" in output
    assert "4 passed, 0 failed" in output
