"""The `triage` command as an operator runs it: environment variables only, real broker, kill -9."""

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import REPO, read_topic
from triage.broker import free_port
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
        [*TRIAGE, "produce", "--raw", str(source)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
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

        def ids(records: list) -> set[str]:
            return {json.loads(record.value)["message_id"] for record in records}

        results = read_topic(
            kafka_settings.bootstrap_servers,
            kafka_settings.results_topic,
            1000,
            timeout_s=60,
            until=lambda records: len(ids(records)) == 1000,
        )
        assert ids(results) == {f"m-{i:04d}" for i in range(1000)}  # none missing
        # none twice: a result whose publish the broker acknowledged before the kill, but which was not
        # marked sent, is found on the topic by the restarted worker rather than sent again
        assert len(results) == 1000
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
        log.close()
    assert second.returncode == 0, (tmp_path / "second.log").read_text()[-2000:]

    dead = read_topic(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 4)
    assert {record.value.decode() for record in dead} == set(bad)


def test_demo_runs_outside_a_checkout_and_ends_with_the_report_command(tmp_path: Path):
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
    env["COLUMNS"] = "200"
    # As after README command 1: the installed script run by its path, its directory not on PATH.
    script = Path(sys.executable).parent / "triage"
    env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep) if d != str(script.parent))
    # An empty directory: samples and routing come from the package, the store is ./triage-demo.db.
    done = subprocess.run(
        [str(script), "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Triaged messages" in done.stdout
    assert "msg-1001" in done.stdout and "msg-1030" in done.stdout
    assert "processed" in done.stdout and "│    30 │" in done.stdout
    assert "embedded" in done.stdout  # the default backend, offline
    assert "dead lettered" in done.stdout and "│     2 │" in done.stdout
    assert stored_count(f"sqlite:///{tmp_path / 'triage-demo.db'}") == 30

    said = done.stderr.splitlines()
    assert said[0].startswith("connecting to Kafka at 127.0.0.1:")
    assert [line.split(":")[0] for line in said[1:]] == ["warning"] * 5, said  # nothing from the client
    assert sum("will skip every delivery" in line for line in said) == 3  # helpdesk, oncall, cx-leads
    assert sum("dead-lettered" in line for line in said) == 2
    # a position in the one notation, topic:partition:offset
    assert all(
        re.search(r"dead-lettered support\.messages:\d+:\d+: ", line) for line in said if "dead-" in line
    )

    *_, intro, command = done.stdout.splitlines()
    assert intro == "The CX health report of this run (writes report.html):"
    assert command == f"  TRIAGE_DATABASE_URL=sqlite:///triage-demo.db {script} report"
    # as printed, by a shell
    report = subprocess.run(command, shell=True, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert report.stdout.strip() == "wrote report.html: 30 messages in the last 7 days"


def test_the_demo_names_triage_by_its_path_only_when_path_does_not_find_it(monkeypatch, tmp_path: Path):
    from triage.cli import invoked_as

    script = tmp_path / "bin" / "triage"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr("sys.argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", str(script.parent))
    assert invoked_as() == "triage"
    monkeypatch.setenv("PATH", "/nonexistent")
    assert invoked_as() == str(script)
    monkeypatch.setattr("sys.argv", [str(REPO / "triage" / "__main__.py"), "demo"])
    assert invoked_as() == f"{sys.executable} -m triage"


def test_the_packaged_demo_samples_are_the_repository_ones():
    packaged = REPO / "triage" / "defaults" / "messages.jsonl"
    assert packaged.read_text() == (REPO / "config" / "samples" / "messages.jsonl").read_text()


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
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    record = json.loads(lines[0])  # not a terminal: the log, this line too, is JSON
    assert record["level"] == "error" and expected in record["msg"], record


def test_bad_routing_file_names_the_line(kafka_settings, tmp_path):
    routing = tmp_path / "routing.yaml"
    routing.write_text("receivers:\n  - name: a\n    console: {}\nroute:\n  receiver: b\n")
    env = triage_env(kafka_settings, f"sqlite:///{tmp_path / 's.db'}", TRIAGE_ROUTING_FILE=str(routing))
    done = subprocess.run([*TRIAGE, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{routing}:5: route.receiver: receiver 'b' is not defined" in done.stderr


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a-wrong-key", "rejected TRIAGE_LLM__API_KEY (401)"),
        ("", "wants a key (401): TRIAGE_LLM__API_KEY is empty"),
    ],
)
def test_a_wrong_or_missing_llm_key_fails_fast_with_one_line(kafka_settings, tmp_path, key, expected):
    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as llm:
        llm.valid_keys = {"the-right-key"}
        env = triage_env(
            kafka_settings,
            f"sqlite:///{tmp_path / 's.db'}",
            TRIAGE_CLASSIFIER__BACKEND="llm",
            TRIAGE_LLM__BASE_URL=llm.base_url,
            TRIAGE_LLM__API_KEY=key,
        )
        done = subprocess.run(
            [*TRIAGE, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], done.stderr


def plain(line: str) -> str:
    """A JSON log line as the sentence a person reads: its message, `error: ...` for an error."""
    if not line.startswith("{"):
        return line
    record = json.loads(line)
    return record["msg"] if record["level"] == "info" else f"{record['level']}: {record['msg']}"


@pytest.mark.parametrize(
    ("terminal", "setting", "text"),
    [(True, None, True), (False, None, False), (True, "json", False), (False, "text", True)],
    ids=["terminal", "pipe", "terminal-json", "pipe-text"],
)
def test_the_worker_logs_text_at_a_terminal_and_json_elsewhere_its_start_up_error_too(
    tmp_path: Path, terminal: bool, setting: str | None, text: bool
):
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    extra = {"TRIAGE_KAFKA__BOOTSTRAP_TIMEOUT_MS": "1000"} | (
        {"TRIAGE_LOG__FORMAT": setting} if setting else {}
    )
    env = triage_env(nowhere, f"sqlite:///{tmp_path / 's.db'}", **extra)
    if terminal:
        reader, writer = pty.openpty()
    else:
        reader, writer = os.pipe()
    process = subprocess.Popen(
        [*TRIAGE, "run"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=writer
    )
    os.close(writer)
    said = b""
    while chunk := _read(reader):
        said += chunk
    os.close(reader)
    assert process.wait(timeout=60) == 2
    plain_text = re.sub(r"\x1b\[[0-9;]*m", "", said.decode())  # a terminal's error: is red
    lines = [line for line in plain_text.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    connecting, error = lines
    if text:
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d info +triage\.kafka: connecting to Kafka at .*", connecting
        )
        assert error.startswith(f"error: cannot reach Kafka at {nowhere.bootstrap_servers}"), error
    else:
        records = [json.loads(line) for line in lines]
        assert [(r["level"], r["logger"]) for r in records] == [("info", "triage.kafka"), ("error", "triage")]
        assert records[1]["msg"].startswith(f"cannot reach Kafka at {nowhere.bootstrap_servers}")


def _read(fd: int) -> bytes:
    """What a pipe or a terminal's reading end has; b"" at its end (a terminal says EIO there)."""
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""


def timed_lines(process: subprocess.Popen) -> list[tuple[float, str]]:
    """Each line of the process's standard error with the time.monotonic() it arrived, to the end."""
    return [(time.monotonic(), line.rstrip("\n")) for line in process.stderr]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["run"], ["connecting to Kafka at", "error: cannot reach Kafka at"]),
        (["produce", str(REPO / "config/samples/messages.jsonl")], ["connecting to Kafka at", "error:"]),
        (["demo"], ["connecting to Kafka at", "error: cannot reach Kafka at"]),
    ],
)
def test_an_unreachable_broker_is_one_line_after_the_connect_timeout(tmp_path: Path, command, expected):
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    env = triage_env(nowhere, f"sqlite:///{tmp_path / 's.db'}", TRIAGE_KAFKA__BOOTSTRAP_TIMEOUT_MS="4000")
    process = subprocess.Popen(
        [*TRIAGE, *command], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines = timed_lines(process)
    process.wait(timeout=60)
    assert process.returncode == 2 and process.stdout.read() == ""
    shown = [plain(line) for _, line in lines]
    assert len(shown) == len(expected), "\n".join(shown)  # none of the Kafka client's own lines
    for line, start in zip(shown, expected, strict=True):
        assert start in line, line
    error = shown[-1]
    assert error.startswith(f"error: cannot reach Kafka at {nowhere.bootstrap_servers}")
    assert error.endswith("within 4s: Connection failed: KafkaConnectionError: 111 ECONNREFUSED")
    connecting = next(at for at, line in lines if "connecting to Kafka" in line)
    waited = lines[-1][0] - connecting
    assert 3.5 < waited < 8, waited  # the setting bounds the wait (its default, 10 s, was 30 s)


def test_the_worker_says_what_it_uses_in_one_line_and_warns_of_idle_receivers(
    kafka_settings: KafkaSettings, postgres_url: str, tmp_path: Path
):
    with_password = postgres_url.replace("postgres@", "postgres:s3cret-pw@")
    env = triage_env(kafka_settings, with_password)
    del env["TRIAGE_ROUTING_FILE"]  # none in tmp_path: the built-in example tree
    worker = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: stored_count(postgres_url) == 0 and migrated(postgres_url), 60, "the migrations")
        time.sleep(4)  # the group join; then the worker idles
    finally:
        worker.send_signal(signal.SIGTERM)
        lines = [json.loads(line) for line in worker.stderr]
        worker.wait(timeout=60)
    assert worker.returncode == 0
    messages = [line["msg"] for line in lines]
    assert messages[0] == f"connecting to Kafka at {kafka_settings.bootstrap_servers} (giving up after 10s)"
    start = messages[1]
    kafka = kafka_settings
    host_and_db = with_password.split("@", 1)[1]
    assert start == (
        f"starting: store postgresql+psycopg://postgres:***@{host_and_db}; "
        f"routing {REPO / 'triage/defaults/routing.yaml'} (the built-in example: config/routing.yaml "
        f"does not exist here); classifier rules; topics {kafka.input_topic} -> {kafka.results_topic}, "
        f"dead letters {kafka.dlq_topic}; receivers log (console), helpdesk (helpdesk), "
        "oncall (Slack #support-urgent), cx-leads (Slack #cx-escalations)"
    )
    warnings = [line["msg"] for line in lines if line["level"] == "warning"]
    assert warnings == [
        "receiver helpdesk (helpdesk) will skip every delivery: "
        "no helpdesk is configured (none of TRIAGE_HELPDESK__BASE_URL, TRIAGE_GORGIAS__BASE_URL, "
        "TRIAGE_KUSTOMER__BASE_URL, TRIAGE_FRESHDESK__BASE_URL)",
        "receiver oncall (Slack #support-urgent) will skip every delivery: "
        "Slack is not configured (no TRIAGE_SLACK__TOKEN)",
        "receiver cx-leads (Slack #cx-escalations) will skip every delivery: "
        "Slack is not configured (no TRIAGE_SLACK__TOKEN)",
    ]
    assert "s3cret-pw" not in json.dumps(lines)
    assert "partitions revoked: []" not in messages  # the client's call before the first assignment
    assert any(m.startswith("partitions assigned") for m in messages)
    assert not [line for line in lines if line["logger"].startswith("kafka")]


def migrated(database_url: str) -> bool:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    except Exception:
        return False
    finally:
        engine.dispose()


def test_triage_broker_runs_a_local_broker_with_the_topics_until_ctrl_c(tmp_path: Path):
    from kafka import KafkaProducer

    from triage.broker import free_port

    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
    broker = subprocess.Popen(
        [*TRIAGE, "broker", "--port", str(port)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        lines = [broker.stdout.readline() for _ in range(3)]
        exports = dict(part.split("=", 1) for part in lines[1].split()[1:])
        assert exports == {
            "TRIAGE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "TRIAGE_KAFKA__SESSION_TIMEOUT_MS": "2000",
            "TRIAGE_KAFKA__HEARTBEAT_INTERVAL_MS": "300",
        }
        producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}")
        producer.send("support.messages", b'{"id": "m1", "body": "hello"}').get(
            timeout=30
        )  # the topic exists
        producer.close()
        [record] = read_topic(f"127.0.0.1:{port}", "support.messages", 1)
        assert record.value == b'{"id": "m1", "body": "hello"}'
        taken = subprocess.run(
            [*TRIAGE, "broker", "--port", str(port)], env=env, capture_output=True, text=True, timeout=60
        )
        assert taken.returncode == 2
        assert taken.stderr.strip() == f"error: port {port} is in use; choose another with --port"
    finally:
        broker.send_signal(signal.SIGINT)
        assert broker.wait(timeout=30) == 0


@pytest.mark.parametrize(
    "command",
    [
        ["eval", "--from-store"],
        ["train", "--from-store", "--task", "urgency"],
        ["routes", "diff", str(REPO / "config" / "routing.yaml")],
    ],
)
def test_commands_that_read_the_store_do_not_create_an_empty_one(tmp_path, command):
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
    env["TRIAGE_ROUTING_FILE"] = str(REPO / "config" / "routing.yaml")
    done = subprocess.run(
        [*TRIAGE, *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        "error: no store at triage.db: the SQLite file does not exist "
        "(TRIAGE_DATABASE_URL=sqlite:///triage.db); `triage demo` keeps its store in triage-demo.db"
    )
    assert list(tmp_path.iterdir()) == []


COMMANDS = [
    [],
    *[[name] for name in ("demo", "broker", "run", "produce", "classify", "report", "eval", "train")],
    ["routes"],
    *[["routes", name] for name in ("check", "test", "diff")],
    ["dlq"],
    *[["dlq", name] for name in ("list", "replay")],
    ["warehouse"],
    ["warehouse", "sync"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "triage")
def test_help_reads_like_git_flags_take_no_value_and_arguments_are_named_one_way(command: list[str]):
    from typer.testing import CliRunner

    from triage.cli import app

    done = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"}, prog_name="triage")
    assert done.exit_code == 0, done.output
    assert "<bool>" not in done.output
    [usage] = [line.strip() for line in done.output.splitlines() if "Usage:" in line]
    assert usage.startswith(f"Usage: {' '.join(['triage', *command])} [OPTIONS]")
    for piece in usage.split()[2 + len(command) :]:
        assert re.fullmatch(r"\[OPTIONS\]|COMMAND|\[ARGS\]\.\.\.|\[?[A-Z][A-Z.a-z]*\]?", piece), usage


def test_help_lists_the_commands_in_the_order_of_a_first_hour():
    from typer.testing import CliRunner

    from triage.cli import app

    done = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}, prog_name="triage")
    listed = [m[1] for line in done.output.splitlines() if (m := re.match(r"│ (\w+) {2,}\S", line))]
    assert listed == [
        "demo",
        "broker",
        "run",
        "produce",
        "classify",
        "routes",
        "report",
        "eval",
        "train",
        "dlq",
        "silence",
        "ingest",
        "input",
        "schema",
        "forget",
        "warehouse",
    ]


def test_eval_without_task_says_the_option_is_missing(tmp_path: Path):
    labelled = tmp_path / "l.csv"
    labelled.write_text("text,label\nhello,positive\n")
    done = subprocess.run([*TRIAGE, "eval", str(labelled)], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: missing option --task: sentiment, urgency or category"
