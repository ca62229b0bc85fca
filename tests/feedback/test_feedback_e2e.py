"""The loop closed in a running worker (`triage run`, a real broker, the Slack, Socket Mode and Zendesk
stand-ins): a click on an alert is stored once, shown on the alert, and re-routes the case to on-call;
an agent's priority change in Zendesk becomes a label while triage's own changes do not; after a
restart the ticket events are read on from the stored cursor."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_socket import FakeSocketMode, block_actions
from tests.fakes.zendesk_server import FakeZendesk
from tests.feedback.conftest import ANA, ROUTING
from tests.test_cli import TRIAGE, stored_count, triage_env, wait_for
from triage.feedback.zendesk_events import CURSOR, EVENTS_PATH

MESSAGES = [
    {
        "id": "m-invoice",
        "conversation_id": "c-invoice",
        "body": "I am really disappointed, my invoice shows the wrong amount",
        "customer": {"id": "cust-1", "name": "Dana", "tier": "enterprise"},
        "ticket": {"system": "zendesk", "id": 9001},
    },
    {
        "id": "m-export",
        "conversation_id": "c-export",
        "body": "This is terrible, the export keeps failing and I am annoyed",
        "customer": {"id": "cust-2", "name": "Eli", "tier": "pro"},
        "ticket": {"system": "zendesk", "id": 9002},
    },
]


def query(database_url: str, sql: str) -> list[tuple]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def labels(database_url: str) -> list[tuple]:
    return query(
        database_url,
        "SELECT message_id, field, model_value, team_value, source, person_id FROM labels ORDER BY id",
    )


def oncall_alerts(slack: FakeSlack) -> list[str]:
    return [m["metadata"]["event_payload"]["message_id"] for m in slack.messages_in("#oncall")]


def start(env: dict, cwd: Path, log: Path) -> tuple[subprocess.Popen, object]:
    handle = log.open("a")
    return subprocess.Popen([*TRIAGE, "run"], env=env, cwd=cwd, stderr=handle), handle


def stop(worker: subprocess.Popen, handle) -> None:
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)
    handle.close()
    assert worker.returncode == 0


def test_clicks_and_helpdesk_changes_become_labels_in_a_running_worker(kafka_settings, tmp_path: Path):
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    source = tmp_path / "messages.jsonl"
    source.write_text("\n".join(json.dumps(m) for m in MESSAGES) + "\n")
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    log = tmp_path / "worker.log"
    with FakeSlack() as slack, FakeSocketMode() as socket_mode, FakeZendesk() as zendesk:
        slack.socket_mode = socket_mode
        env = triage_env(
            kafka_settings,
            database_url,
            TRIAGE_ROUTING_FILE=str(routing),
            **slack.env(),
            **zendesk.env(),
            TRIAGE_SLACK__APP_TOKEN="xapp-test",
            TRIAGE_FEEDBACK__ZENDESK_POLL_S="1",
        )
        produced = subprocess.run(
            [*TRIAGE, "produce", str(source)], env=env, capture_output=True, timeout=120
        )
        assert produced.returncode == 0, produced.stderr

        worker, handle = start(env, tmp_path, log)
        try:
            wait_for(lambda: len(slack.messages_in("#cx")) == 2, 120, "both alerts in #cx")
            wait_for(lambda: len(zendesk.events) == 2, 60, "triage's writes to both tickets")
            assert slack.messages_in("#oncall") == []  # both judged normal
            socket_mode.wait_connected()
            invoice = next(
                m
                for m in slack.messages_in("#cx")
                if m["metadata"]["event_payload"]["message_id"] == "m-invoice"
            )

            click = block_actions(invoice, "triage_urgency", ANA, value="urgent")
            envelope = socket_mode.send_interactive(click)
            assert socket_mode.wait_ack(envelope)
            socket_mode.send_interactive(click, envelope_id=envelope)  # Slack sends it again
            assert socket_mode.wait_ack(envelope, count=2)
            forged = block_actions(invoice, "triage_urgency", ANA, value="low", channel="#general")
            assert socket_mode.wait_ack(socket_mode.send_interactive(forged))

            wait_for(lambda: "ana set urgency urgent" in str(invoice["blocks"]), 30, "the alert redrawn")
            wait_for(
                lambda: oncall_alerts(slack) == ["m-invoice"], 60, "on-call paged for the corrected case"
            )

            zendesk.agent_change(9002, agent=7, priority="high")
            wait_for(lambda: len(labels(database_url)) == 2, 60, "the agent's change read as a label")
            wait_for(
                lambda: sorted(oncall_alerts(slack)) == ["m-export", "m-invoice"], 60, "the high one paged"
            )
        finally:
            stop(worker, handle)

        assert labels(database_url) == [
            ("m-invoice", "urgency", "normal", "urgent", "slack", "U0ANA"),
            ("m-export", "urgency", "normal", "high", "zendesk", "7"),
        ]
        [(cursor,)] = query(database_url, f"SELECT position FROM feedback_cursors WHERE name = '{CURSOR}'")

        zendesk.requests.clear()
        zendesk.agent_change(9001, agent=8, add_tags=("category_refund",), remove_tags=("category_billing",))
        worker, handle = start(env, tmp_path, log)
        try:
            wait_for(lambda: len(labels(database_url)) == 3, 60, "the change made while it was stopped")
        finally:
            stop(worker, handle)
        first_read = next(r for r in zendesk.requests if r["path"] == EVENTS_PATH)
        assert first_read["query"]["start_time"] == cursor  # resumed, not started over

    assert labels(database_url)[2] == ("m-invoice", "category", "billing", "refund", "zendesk", "8")
    assert oncall_alerts(slack).count("m-invoice") == 1  # one page per corrected case, whatever repeats
    assert stored_count(database_url) == 2
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert any("refused a Slack click, stored nothing: wrong_channel" in line["msg"] for line in lines)
    starting = next(line["msg"] for line in lines if line["msg"].startswith("starting:"))
    assert starting.endswith("; feedback from Slack buttons (Socket Mode), Zendesk ticket events every 1s")
