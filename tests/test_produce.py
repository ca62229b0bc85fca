"""`triage produce`: JSON Lines checked before anything is sent, --raw, and --new-ids."""

import json
import subprocess
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.conftest import REPO, read_topic
from tests.test_cli import TRIAGE, triage_env
from triage.settings import KafkaSettings

SAMPLES = REPO / "config" / "samples" / "messages.jsonl"


def produce(kafka: KafkaSettings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = triage_env(kafka, f"sqlite:///{tmp_path / 's.db'}")
    return subprocess.run(
        [*TRIAGE, "produce", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def end_offsets(kafka: KafkaSettings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers)
    try:
        partitions = [
            TopicPartition(kafka.input_topic, p)
            for p in consumer.partitions_for_topic(kafka.input_topic) or ()
        ]
        return sum(consumer.end_offsets(partitions).values()) if partitions else 0
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (REPO.joinpath("README.md").read_bytes(), 1, "not JSON (Expecting value at column 1)"),
        (
            json.dumps([{"id": "a", "body": "x"}], indent=2).encode(),
            1,
            "not JSON (Expecting value at column 2)",
        ),
        (b'{"id": "a", "body": "x"}\n\n{"id": "b", "body": ', 3, "not JSON (Expecting value at column 21)"),
        (b'{"id": "a", "body": "x"}\n["an", "array"]\n', 2, "a JSON array, not an object"),
        (b'{"id": "a", "body": "caf\xe9"}\n', 1, "not UTF-8 (byte 0xe9 at column 25)"),
    ],
)
def test_a_line_that_is_not_a_json_object_is_refused_with_its_line_and_nothing_is_sent(
    kafka_settings: KafkaSettings, tmp_path: Path, content: bytes, line: int, problem: str
):
    source = tmp_path / "input.txt"
    source.write_bytes(content)
    done = produce(kafka_settings, tmp_path, str(source))
    assert done.returncode == 2 and done.stdout == ""
    [said] = done.stderr.splitlines()
    assert said.startswith(f"error: {source}:{line}: {problem}; "), said
    assert said.endswith("nothing was sent (--raw sends lines as they are)")
    assert end_offsets(kafka_settings) == 0


def test_raw_sends_every_line_as_it_is(kafka_settings: KafkaSettings, tmp_path: Path):
    lines = [b'{"id": "a", "body": "x"}', b"# not json", b'["an", "array"]']
    source = tmp_path / "input.txt"
    source.write_bytes(b"\n".join(lines) + b"\n")
    done = produce(kafka_settings, tmp_path, "--raw", str(source))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sent 3 records to {kafka_settings.input_topic}"
    sent = read_topic(kafka_settings.bootstrap_servers, kafka_settings.input_topic, 3)
    assert sorted(record.value for record in sent) == sorted(lines)
    refused = produce(kafka_settings, tmp_path, "--raw", "--new-ids", str(source))
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: --raw sends lines as they are: it cannot give them --new-ids"


def test_new_ids_are_fresh_on_each_run_and_the_same_for_the_same_run(kafka_settings: KafkaSettings, tmp_path):
    samples = sorted(
        (json.loads(line) for line in SAMPLES.read_text().splitlines() if line.strip()), key=id_of
    )
    runs = []
    for args in ([], ["--new-ids"], ["--new-ids"], ["--new-ids", "--run", "7"], ["--run", "7"]):
        end = end_offsets(kafka_settings)
        done = produce(kafka_settings, tmp_path, *args, str(SAMPLES))
        assert done.returncode == 0, done.stderr
        run = "7" if "--run" in args else str(end) if args else ""
        runs.append(run)
        renamed = f" with new ids (-r{run})" if args else ""
        assert done.stdout.strip() == f"sent 30 records to {kafka_settings.input_topic}{renamed}"
    first, second = runs[1:3]
    assert first != second and "" not in (first, second)  # the topic's end offsets grew between them

    records = read_topic(kafka_settings.bootstrap_servers, kafka_settings.input_topic, 150)
    by_run: dict[str, dict[str, dict]] = {}
    for record in records:
        document = json.loads(record.value)
        assert record.key.decode() == document.get("conversation_id", document["id"])
        by_run.setdefault(document["id"].partition("-r")[2], {})[document["id"]] = document
    assert {run: len(documents) for run, documents in by_run.items()} == {
        "": 30,
        first: 30,
        second: 30,
        "7": 30,
    }
    assert len(records) == 150  # --run 7 twice: the same 30 ids twice
    for run in (first, second, "7"):
        renamed = sorted(by_run[run].values(), key=id_of)
        for original, new in zip(samples, renamed, strict=True):
            assert new["id"] == f"{original['id']}-r{run}"
            if "conversation_id" in original:
                assert new["conversation_id"] == f"{original['conversation_id']}-r{run}"
            assert new["body"] == original["body"]


def id_of(document: dict) -> str:
    return document["id"]
