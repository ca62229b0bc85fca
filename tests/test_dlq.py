"""`triage dlq list` and `triage dlq replay` as an operator runs them, on the real broker."""

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from tests.conftest import message, read_topic
from triage import message as message_module
from triage import worker as worker_module
from triage.broker import free_port
from triage.dlq import KNOWN_CODES, DeadLetter, DeadLetters
from triage.kafka import dead_letter_headers, ensure_topics
from triage.settings import KafkaSettings, Settings
from triage.store import Store
from triage.worker import Worker

# `triage dlq ...` once cli.py registers dlq_app; until then the sub-app on its own, the same code.
DLQ = [sys.executable, "-m", "triage", "dlq"]
DEAD_LETTER_HEADERS = {
    "triage.error",
    "triage.error.code",
    "triage.original.topic",
    "triage.original.partition",
    "triage.original.offset",
    "triage.failed_at",
}

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kafka(kafka_settings: KafkaSettings) -> KafkaSettings:
    ensure_topics(kafka_settings, [kafka_settings.input_topic, kafka_settings.dlq_topic])
    return kafka_settings


@pytest.fixture
def run_dlq(tmp_path: Path) -> Run:
    def run(kafka: KafkaSettings, *args: str, columns: int = 250) -> subprocess.CompletedProcess[str]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
        env.update(
            {
                "TRIAGE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                "TRIAGE_KAFKA__GROUP_ID": kafka.group_id,
                "TRIAGE_KAFKA__INPUT_TOPIC": kafka.input_topic,
                "TRIAGE_KAFKA__DLQ_TOPIC": kafka.dlq_topic,
                "TRIAGE_KAFKA__PARTITIONS": "3",
                "COLUMNS": str(columns),
            }
        )
        return subprocess.run(
            [*DLQ, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    return run


def dead_letter(
    kafka: KafkaSettings,
    value: bytes,
    code: str,
    detail: str,
    *,
    key: bytes | None = b"conv-1",
    offset: int = 0,
    headers: tuple[tuple[str, bytes], ...] = (),
    failed_at: datetime | None = None,
) -> str:
    """Dead-letter a record as the worker does (its own header function); returns `dlq:partition:offset`."""
    fields = dict.fromkeys(ConsumerRecord._fields) | {
        "topic": kafka.input_topic,
        "partition": 1,
        "offset": offset,
        "key": key,
        "value": value,
        "headers": list(headers),
    }
    dlq_headers = dead_letter_headers(ConsumerRecord(**fields), code, detail)
    if failed_at:
        stamp = failed_at.isoformat(timespec="seconds").encode()
        dlq_headers = [(n, stamp if n == "triage.failed_at" else v) for n, v in dlq_headers]
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    sent = producer.send(kafka.dlq_topic, key=key, value=value, headers=dlq_headers).get(timeout=30)
    producer.close()
    return f"{sent.topic}:{sent.partition}:{sent.offset}"


def everything(bootstrap: str, topic: str, quiet_s: float = 2.5) -> list[ConsumerRecord]:
    """All records of a topic (none when it does not exist): read until nothing arrives for quiet_s."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = consumer.partitions_for_topic(topic)
    records: list[ConsumerRecord] = []
    if partitions:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        last = time.monotonic()
        while time.monotonic() - last < quiet_s:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
                last = time.monotonic()
    consumer.close()
    return records


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_list_shows_each_dead_letter_with_reason_origin_key_and_size(kafka: KafkaSettings, run_dlq: Run):
    bad_json = b'{"id": "bad-1", "body": '
    first = dead_letter(kafka, bad_json, "invalid_json", "Expecting value: line 1 column 25", offset=7)
    dead_letter(kafka, b'{"id": "x"}', "invalid_schema", "body: Field required", key=None, offset=8)
    dead_letter(kafka, message("m-3"), "processing_failed", "[bold]RuntimeError[/]: boom", key=b"conv-3")

    table = run_dlq(kafka, "list")
    assert table.returncode == 0, table.stderr
    for text in ("invalid_json", "invalid_schema", "processing_failed", "Expecting value", "body: Field"):
        assert text in table.stdout
    assert "[bold]RuntimeError[/]: boom" in table.stdout  # record content is shown, not read as markup
    assert f"{kafka.input_topic}:1:7" in table.stdout and "conv-3" in table.stdout
    assert f"3 records on {kafka.dlq_topic}: 3 match (0 replayed already), 0 filtered out" in table.stdout

    rows = {row["code"]: row for row in json_lines(run_dlq(kafka, "list", "--json"))}
    assert set(rows) == {"invalid_json", "invalid_schema", "processing_failed"}
    row = rows["invalid_json"]
    assert f"{row['dlq_topic']}:{row['dlq_partition']}:{row['dlq_offset']}" == first
    assert row["reason"] == "Expecting value: line 1 column 25"
    assert (row["original_topic"], row["original_partition"], row["original_offset"]) == (
        kafka.input_topic,
        1,
        7,
    )
    assert (row["key"], row["size"], row["replayed"]) == ("conv-1", len(bad_json), False)
    assert datetime.fromisoformat(row["failed_at"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert rows["invalid_schema"]["key"] is None


def test_list_filters_by_reason_and_age_and_limits_to_the_most_recent(kafka: KafkaSettings, run_dlq: Run):
    now = datetime.now(UTC)
    dead_letter(kafka, message("old"), "processing_failed", "x", failed_at=now - timedelta(days=3))
    dead_letter(kafka, b"{", "invalid_json", "y", failed_at=now - timedelta(hours=1))
    dead_letter(kafka, message("new"), "processing_failed", "z", failed_at=now)

    def listed(*args: str) -> list[dict]:
        return json_lines(run_dlq(kafka, "list", "--json", *args))

    assert sorted(r["reason"] for r in listed("--reason", "processing_failed")) == ["x", "z"]
    assert [r["reason"] for r in listed("--since", "24h")] == ["y", "z"]  # oldest first
    assert [r["reason"] for r in listed("--since", "24h", "--reason", "processing_failed")] == ["z"]
    assert [r["reason"] for r in listed("--reason", "invalid_json", "--reason", "processing_failed")] == [
        "x",
        "y",
        "z",
    ]
    assert [r["reason"] for r in listed("--limit", "2")] == ["y", "z"]

    summary = run_dlq(kafka, "list", "--since", "24h", "--limit", "1").stdout
    assert "2 match (0 replayed already), 1 filtered out; showing the 1 most recent" in summary

    wrong = run_dlq(kafka, "list", "--since", "yesterday")
    assert wrong.returncode == 2 and wrong.stderr.strip().startswith("error: --since:")


def test_replay_resends_the_original_record_once_whatever_the_filters(kafka: KafkaSettings, run_dlq: Run):
    failed = message("m-1", "Where is my refund?", conversation_id="conv-1")
    a = dead_letter(kafka, failed, "processing_failed", "boom", headers=(("trace", b"abc"),))
    b = dead_letter(kafka, message("m-2"), "processing_failed", "boom", key=None)
    c = dead_letter(kafka, b'{"id": "m-3", "body": ', "invalid_json", "Expecting value", key=b"conv-3")

    first = run_dlq(kafka, "replay", "--reason", "processing_failed")
    assert first.returncode == 0, first.stderr
    assert "replayed 2 records" in first.stdout
    assert "0 skipped as already replayed; 1 filtered out" in first.stdout
    replayed = read_topic(kafka.bootstrap_servers, kafka.input_topic, 2)
    assert len(replayed) == 2
    by_origin = {dict(r.headers)["triage.replayed_from"].decode(): r for r in replayed}
    assert set(by_origin) == {a, b}
    assert (by_origin[a].key, by_origin[a].value) == (b"conv-1", failed)
    assert (by_origin[b].key, by_origin[b].value) == (None, message("m-2"))
    assert [name for name, _ in by_origin[a].headers] == ["trace", "triage.replayed_from"]
    assert dict(by_origin[a].headers)["trace"] == b"abc"
    assert not DEAD_LETTER_HEADERS & {name for name, _ in by_origin[b].headers}

    second = run_dlq(kafka, "replay")  # no filter now: only the record the first run filtered out
    assert second.returncode == 0, second.stderr
    assert (
        "replayed 1 records" in second.stdout
        and "2 skipped as already replayed; 0 filtered out" in second.stdout
    )
    assert "invalid_json: 1" in second.stdout and "dead-lettered again" in second.stdout
    third = run_dlq(kafka, "replay")
    assert "replayed 0 records" in third.stdout and "3 skipped as already replayed" in third.stdout

    records = everything(kafka.bootstrap_servers, kafka.input_topic)
    assert sorted(dict(r.headers)["triage.replayed_from"].decode() for r in records) == sorted([a, b, c])
    assert all(row["replayed"] for row in json_lines(run_dlq(kafka, "list", "--json")))


def test_dry_run_shows_what_would_be_replayed_and_sends_nothing(kafka: KafkaSettings, run_dlq: Run):
    dead_letter(kafka, message("m-1"), "processing_failed", "boom")
    dead_letter(kafka, message("m-2"), "processing_failed", "boom", key=b"conv-2")

    dry = run_dlq(kafka, "replay", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would replay 2 records" in dry.stdout and "dry run: nothing was sent" in dry.stdout
    assert "processing_failed" in dry.stdout and "conv-2" in dry.stdout
    assert everything(kafka.bootstrap_servers, kafka.input_topic) == []
    assert everything(kafka.bootstrap_servers, f"{kafka.dlq_topic}.replayed") == []

    real = run_dlq(kafka, "replay")  # the dry run marked nothing as replayed
    assert "replayed 2 records" in real.stdout and "note:" not in real.stdout
    assert len(everything(kafka.bootstrap_servers, kafka.input_topic)) == 2


def test_a_record_that_failed_in_processing_is_triaged_after_replay_once(settings: Settings, run_dlq: Run):
    kafka = settings.kafka
    ensure_topics(kafka, [kafka.input_topic, kafka.dlq_topic])
    dead_letter(
        kafka, message("m-fixed", "The app crashes at login"), "processing_failed", "bug, since fixed"
    )

    for _ in range(2):  # the second replay re-drives nothing
        assert run_dlq(kafka, "replay").returncode == 0
    worker = Worker.from_settings(settings)
    stats = worker.run(until=lambda s: s.handled >= 1)

    assert stats.outcomes["processed"] == 1
    store = Store(settings.database_url)
    assert store.is_processed("m-fixed")
    store.close()
    assert len(everything(kafka.bootstrap_servers, kafka.input_topic)) == 1


@pytest.mark.parametrize("columns", [80, 250])
def test_list_at_any_width_shows_every_position_and_the_whole_reason(
    kafka: KafkaSettings, run_dlq: Run, columns: int
):
    long_reason = "body: Field required; customer.tier: Input should be a valid string " * 3
    key = "conversation-" + "k" * 40
    first = dead_letter(kafka, b'{"id": "x"}', "invalid_schema", long_reason, key=key.encode(), offset=4)
    second = dead_letter(kafka, b"{", "invalid_json", "Expecting value at line 1 column 2", offset=9)

    table = run_dlq(kafka, "list", columns=columns)

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns, table.stdout
    for position in (first, second, f"{kafka.input_topic}:1:4", f"{kafka.input_topic}:1:9"):
        assert position in table.stdout  # never left out, never cut
    assert "…" not in table.stdout
    words = " ".join(table.stdout.split())
    if columns == 80:  # a block per record: the reason and the key wrap under it
        assert " ".join(long_reason.split()) in words and key in words
    else:  # a row per record: they wrap in their columns
        assert sum(position in line for line in lines for position in (first, second)) == 2
        [row] = [line for line in lines if first in line]
        assert "invalid_schema" in row and "body: Field required" in row and "conversation-k" in row


@pytest.mark.parametrize("command", [["list"], ["replay", "--dry-run"]])
def test_an_unknown_reason_code_is_named_with_the_known_ones(kafka: KafkaSettings, run_dlq: Run, command):
    dead_letter(kafka, b"{", "invalid_json", "y")
    dead_letter(kafka, b"{", "a_newer_workers_code", "z", offset=1)

    result = run_dlq(kafka, *command, "--reason", "bogus", "--reason", "invalid_json")

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --reason bogus: unknown code; known codes: a_newer_workers_code, body_too_large, "
        "empty_value, invalid_json, invalid_schema, invalid_unicode, invalid_utf8, not_an_object, "
        "processing_failed, schema_unknown, undecodable, unmappable"
    ]
    listed = json_lines(run_dlq(kafka, "list", "--json", "--reason", "a_newer_workers_code"))
    assert [row["reason"] for row in listed] == ["z"]  # a code found on the topic is known


def test_the_known_codes_are_every_code_the_worker_writes():
    """--reason checks codes against dlq.KNOWN_CODES: a code added to the worker must be added there."""
    modules = [Path(message_module.__file__), Path(worker_module.__file__)]
    modules += sorted((Path(message_module.__file__).parent / "input").glob("*.py"))
    source = "".join(path.read_text() for path in modules)
    written = set(re.findall(r'(?:InvalidMessage\(|dead_letter\(record, )\s*"([a-z0-9_]+)"', source))
    assert written == KNOWN_CODES, written


@pytest.mark.parametrize("command", [["list"], ["replay"]])
def test_an_unreachable_broker_is_one_line_and_exit_2(kafka_settings: KafkaSettings, run_dlq: Run, command):
    nowhere = kafka_settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    result = run_dlq(nowhere, *command)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: cannot reach Kafka at {nowhere.bootstrap_servers}")


def test_a_missing_dead_letter_topic_is_named(kafka_settings: KafkaSettings, run_dlq: Run):
    result = run_dlq(kafka_settings, "list")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: dead-letter topic {kafka_settings.dlq_topic!r} does not exist at "
        f"{kafka_settings.bootstrap_servers} (TRIAGE_KAFKA__DLQ_TOPIC)"
    )


def test_a_ledger_entry_counts_only_for_the_same_failure():
    """A dead-letter topic deleted and re-created reuses positions; its new records are not skipped."""
    headers = (
        ("triage.original.topic", b"in"),
        ("triage.original.partition", b"0"),
        ("triage.original.offset", b"5"),
        ("triage.failed_at", b"2026-11-20T10:15:00+00:00"),
    )
    letter = DeadLetter("dlq", 0, 3, b"k", b"v", headers)
    assert DeadLetters([letter], {"dlq:0:3": ("in:0:5", "2026-11-20T10:15:00+00:00")}).replayed(letter)
    assert not DeadLetters([letter], {"dlq:0:3": ("in:0:9", "2026-11-20T10:15:00+00:00")}).replayed(letter)
    assert not DeadLetters([letter], {"dlq:0:3": ("in:0:5", "2026-11-19T08:00:00+00:00")}).replayed(letter)


def test_a_dead_letter_in_doubt_is_found_on_the_topic_not_sent_again(kafka: KafkaSettings):
    """A sender that died between the broker's acknowledgement and the store's mark: the next one
    looks for the record's dead letter, by its original position, before it sends one."""
    from triage.dlq import already_sent

    dead_letter(kafka, b"{", "invalid_json", "x", offset=41)  # original: the input topic, partition 1
    dead_letter(kafka, b"{", "invalid_json", "y", offset=43, key=None)
    assert already_sent(kafka, kafka.input_topic, 1, 41)
    assert already_sent(kafka, kafka.input_topic, 1, 43)
    assert not already_sent(kafka, kafka.input_topic, 1, 42)  # never dead-lettered
    assert not already_sent(kafka, kafka.input_topic, 0, 41)  # another partition's offset 41
