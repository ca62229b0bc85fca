"""Running workers (`triage run` subprocesses) against the Slack and Socket Mode stand-ins."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.fakes.slack_server import FakeSlack
from tests.test_cli import TRIAGE, triage_env
from triage.store import Store

ANA = {"id": "U0ANA", "name": "ana"}


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    return store


def query(database_url: str, sql: str) -> list[tuple]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def message(message_id: str, body: str, tier: str = "pro") -> dict:
    return {
        "id": message_id,
        "conversation_id": f"c-{message_id}",
        "body": body,
        "customer": {"id": f"cust-{message_id}", "tier": tier},
    }


def alerted(slack: FakeSlack, channel: str) -> list[str]:
    """The message ids of a channel's alerts (not the incidents' thread replies), in posting order."""
    return [m["metadata"]["event_payload"]["message_id"] for m in slack.top_level(channel)]


def alert_of(slack: FakeSlack, channel: str, message_id: str) -> dict:
    [found] = [
        m for m in slack.messages_in(channel) if m["metadata"]["event_payload"]["message_id"] == message_id
    ]
    return found


class Setup:
    """A routing file, a store and the env of workers pointed at the stand-ins."""

    def __init__(
        self, kafka_settings, tmp_path: Path, routing: str, slack: FakeSlack, database_url: str | None = None
    ):
        self.tmp_path = tmp_path
        (tmp_path / "routing.yaml").write_text(routing)
        self.database_url = database_url or f"sqlite:///{tmp_path / 'store.db'}"
        self.env = triage_env(
            kafka_settings,
            self.database_url,
            TRIAGE_ROUTING_FILE=str(tmp_path / "routing.yaml"),
            **slack.env(),
            TRIAGE_SLACK__APP_TOKEN="xapp-test",
            TRIAGE_WORKER__DELIVERY_LEASE_S="5",
        )
        self.produced = 0

    def produce(self, *messages: dict) -> None:
        self.produced += 1
        source = self.tmp_path / f"batch-{self.produced}.jsonl"
        source.write_text("".join(json.dumps(m) + "\n" for m in messages))
        done = subprocess.run(
            [*TRIAGE, "produce", str(source)], env=self.env, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr

    def triage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*TRIAGE, *args], env=self.env, capture_output=True, text=True, timeout=120)

    def start(self, name: str = "worker") -> subprocess.Popen:
        log = (self.tmp_path / f"{name}.log").open("a")
        return subprocess.Popen([*TRIAGE, "run"], env=self.env, cwd=self.tmp_path, stderr=log)

    @contextmanager
    def worker(self) -> Iterator[subprocess.Popen]:
        process = self.start()
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def rows(self, sql: str) -> list[tuple]:
        return query(self.database_url, sql)

    def delivery(self, message_id: str, receiver: str) -> tuple:
        """(status, detail) of a message's delivery to a receiver."""
        where = f"message_id = '{message_id}' AND receiver = '{receiver}'"
        [row] = self.rows(f"SELECT status, detail FROM deliveries WHERE {where}")
        return row
