"""The `triage` command as an operator runs it: environment variables only, real broker, kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import REPO, read_topic
from triage.settings import KafkaSettings

TRIAGE = [sys.executable, "-m", "triage"]


def triage_env(kafka: KafkaSettings, database_url: str, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
    env.update(
        {
            "TRIAGE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "TRIAGE_KAFKA__GROUP_ID": kafka.group_id,
            "TRIAGE_KAFKA__INPUT_TOPIC": kafka.input_topic,
            "TRIAGE_KAFKA__RESULTS_TOPIC": kafka.results_topic,
            "TRIAGE_KAFKA__DLQ_TOPIC": kafka.dlq_topic,
            "TRIAGE_KAFKA__SESSION_TIMEOUT_MS": "2000",
            "TRIAGE_KAFKA__HEARTBEAT_INTERVAL_MS": "300",
            "TRIAGE_DATABASE_URL": database_url,
            "TRIAGE_ROUTING_FILE": str(REPO / "config" / "routing.yaml"),
            "TRIAGE_CLASSIFIER__BACKEND": "rules",  # delivery mechanics; the embedded model has its own tests
            "TRIAGE_HTTP__PORT": "0",  # any free port: several workers may run at once
            **extra,
        }
    )
    return env


def stored_count(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
    except Exception:
        return 0  # not migrated yet
    finally:
        engine.dispose()


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_kill_9_mid_stream_then_restart_loses_nothing(kafka_settings: KafkaSettings, tmp_path: Path):
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = triage_env(kafka_settings, database_url)
    lines = [
        json.dumps(
            {
                "id": f"m-{i:04d}",
                "conversation_id": f"conv-{i % 97}",
                "channel": "chat",
                "body": f"Message {i}: my invoice is wrong, please help",
            }
        )
        for i in range(1000)
    ]
    bad = ['{"id": "bad-json", "body": ', '["an", "array"]', '{"id": "no-body"}', '{"id": "x", "body": 7}']
    source = tmp_path / "messages.jsonl"
    source.write_text("\n".join(lines + bad) + "\n")

    produced = subprocess.run(
        [*TRIAGE, "produce", str(source)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert produced.returncode == 0, produced.stderr
    assert "sent 1004 records" in produced.stdout

    first = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: stored_count(database_url) >= 150, 120, "the first worker to store 150 messages")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert stored_count(database_url) < 1000, "the kill came too late to test anything"

    log = (tmp_path / "second.log").open("w")
    second = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=log)
    try:
        wait_for(lambda: stored_count(database_url) == 1000, 180, "all 1000 messages to be stored")
        results = read_topic(
            kafka_settings.bootstrap_servers, kafka_settings.results_topic, 1000, timeout_s=60
        )
        ids = {json.loads(record.value)["message_id"] for record in results}
        assert ids == {f"m-{i:04d}" for i in range(1000)}  # none missing
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
        log.close()
    assert second.returncode == 0, (tmp_path / "second.log").read_text()[-2000:]

    dead = read_topic(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 4)
    assert {record.value.decode() for record in dead} == set(bad)


def test_demo_runs_on_embedded_defaults_and_shows_the_triage(tmp_path: Path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
    env["COLUMNS"] = "200"
    # `triage demo` is run from the repository, as the README says; its store goes to a temp file here.
    env["TRIAGE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.db'}"
    done = subprocess.run([*TRIAGE, "demo"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Triaged messages" in done.stdout
    assert "msg-1001" in done.stdout and "msg-1030" in done.stdout
    assert "processed" in done.stdout and "│    30 │" in done.stdout
    assert "embedded" in done.stdout  # the default backend, offline
    assert "dead lettered" in done.stdout and "│     2 │" in done.stdout
    assert stored_count(env["TRIAGE_DATABASE_URL"]) == 30


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"TRIAGE_KAFKA__SESSION_TIMEOUT_MS": "soon"}, "TRIAGE_KAFKA__SESSION_TIMEOUT_MS"),
        ({"TRIAGE_KAFKA__BOOTSTRAP_SERVERS": ""}, "TRIAGE_KAFKA__BOOTSTRAP_SERVERS"),
        ({"TRIAGE_ROUTING_FILE": "/nonexistent/routing.yaml"}, "/nonexistent/routing.yaml"),
        ({"TRIAGE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, "127.0.0.1"),
        (
            {"TRIAGE_CLASSIFIER__BACKEND": "llm", "TRIAGE_LLM__BASE_URL": "http://127.0.0.1:1/v1"},
            "cannot reach the LLM at TRIAGE_LLM__BASE_URL=http://127.0.0.1:1/v1",
        ),
    ],
)
def test_run_refuses_bad_configuration_with_one_line(kafka_settings, tmp_path, extra, expected):
    env = triage_env(kafka_settings, f"sqlite:///{tmp_path / 's.db'}", **extra)
    done = subprocess.run([*TRIAGE, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert expected in lines[0] and "Traceback" not in done.stderr


def test_bad_routing_file_names_the_line(kafka_settings, tmp_path):
    routing = tmp_path / "routing.yaml"
    routing.write_text("receivers:\n  - name: a\n    console: {}\nroute:\n  receiver: b\n")
    env = triage_env(kafka_settings, f"sqlite:///{tmp_path / 's.db'}", TRIAGE_ROUTING_FILE=str(routing))
    done = subprocess.run([*TRIAGE, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{routing}:5: route.receiver: receiver 'b' is not defined" in done.stderr


def test_a_wrong_llm_key_fails_fast_with_one_line(kafka_settings, tmp_path):
    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as llm:
        llm.valid_keys = {"the-right-key"}
        env = triage_env(
            kafka_settings,
            f"sqlite:///{tmp_path / 's.db'}",
            TRIAGE_CLASSIFIER__BACKEND="llm",
            TRIAGE_LLM__BASE_URL=llm.base_url,
            TRIAGE_LLM__API_KEY="a-wrong-key",
        )
        done = subprocess.run(
            [*TRIAGE, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "rejected TRIAGE_LLM__API_KEY" in lines[0], done.stderr
