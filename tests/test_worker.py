"""The worker end to end on the real broker: valid, invalid and duplicate input, redelivery, commits."""

import json
import os
import threading
import time

from kafka import KafkaConsumer, TopicPartition

from tests.conftest import message, produce, read_topic
from triage.settings import Settings
from triage.store import Store
from triage.worker import Worker

BAD_INPUTS = {
    "invalid_json": b'{"id": "bad-1", "body": "unterminated',
    "invalid_utf8": b'{"id": "bad-2", "body": "caf\xe9"}',
    "not_an_object": b'[{"id": "bad-3", "body": "in an array"}]',
    "invalid_schema": b'{"id": "bad-4", "channel": "email"}',
    "body_too_large": message("bad-5", "x" * (64 * 1024 + 1)),
}
EMPTY_AND_WRONG_TYPE = [message("bad-6", "   "), b'{"id": "bad-7", "body": {"text": "nested"}}']


def run_until_handled(settings: Settings, count: int) -> Worker:
    worker = Worker.from_settings(settings)
    stats = worker.run(until=lambda s: s.handled >= count)
    assert stats.handled == count
    return worker


def test_every_record_ends_in_the_store_or_the_dead_letter_topic(settings: Settings, database_url: str):
    settings.database_url = database_url
    valid = [message(f"ok-{i}", f"Order {i} has not arrived", conversation_id=f"c{i % 3}") for i in range(20)]
    with_unknown_fields = message("ok-extra", "Hello", shoe_size=44, customer={"tier": "pro", "pet": "cat"})
    duplicate = message("ok-3", "a different body with a reused id")
    records = [*valid, with_unknown_fields, *BAD_INPUTS.values(), *EMPTY_AND_WRONG_TYPE, duplicate]
    produce(settings.kafka, records, key=b"one-partition")  # so the duplicate id comes after the original

    worker = run_until_handled(settings, len(records))

    assert worker.stats.outcomes == {"processed": 21, "duplicate": 1, "dead_lettered": 7, "skipped": 0}
    results = read_topic(settings.kafka.bootstrap_servers, settings.kafka.results_topic, 21)
    by_id = {json.loads(r.value)["message_id"]: json.loads(r.value) for r in results}
    assert len(results) == 21 and set(by_id) == {f"ok-{i}" for i in range(20)} | {"ok-extra"}
    first = by_id["ok-1"]
    assert first["conversation_id"] == "c1" and results[0].key is not None
    for field in (
        "urgency",
        "sentiment",
        "category",
        "language",
        "summary",
        "confidence",
        "model",
        "degraded",
        "receivers",
    ):
        assert field in first
    assert first["model"] == "rules" and first["receivers"] == ["helpdesk"]
    assert by_id["ok-3"]["summary"] == "Order 3 has not arrived"  # the first body won, not the duplicate

    dead = read_topic(settings.kafka.bootstrap_servers, settings.kafka.dlq_topic, 7)
    codes = sorted(dict(r.headers)["triage.error.code"].decode() for r in dead)
    assert codes == sorted([*BAD_INPUTS, "invalid_schema", "invalid_schema"])
    for record in dead:
        headers = dict(record.headers)
        assert headers["triage.original.topic"] == settings.kafka.input_topic.encode()
        assert int(headers["triage.original.offset"]) >= 0 and headers["triage.error"]
    assert {r.value for r in dead} == {*BAD_INPUTS.values(), *EMPTY_AND_WRONG_TYPE}  # kept as received

    store = Store(database_url)
    assert len(store.results([f"ok-{i}" for i in range(20)])) == 20
    assert store.count_due() == 0


def test_offsets_are_committed_once_the_work_is_stored(settings: Settings):
    produce(settings.kafka, [message(f"m{i}") for i in range(12)], key=None)
    run_until_handled(settings, 12)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.kafka.group_id,
        enable_auto_commit=False,
    )
    partitions = consumer.partitions_for_topic(settings.kafka.input_topic)
    committed = [consumer.committed(TopicPartition(settings.kafka.input_topic, p)) or 0 for p in partitions]
    consumer.close()
    assert sum(committed) == 12


def test_a_redelivered_message_has_no_second_effect(settings: Settings):
    produce(settings.kafka, [message(f"m{i}") for i in range(5)])
    run_until_handled(settings, 5)
    settings.kafka.group_id += "-replay"  # a new group reads everything again, as after a lost commit
    worker = run_until_handled(settings, 5)
    assert worker.stats.outcomes == {"processed": 0, "duplicate": 5, "dead_lettered": 0, "skipped": 0}
    assert (
        len(read_topic(settings.kafka.bootstrap_servers, settings.kafka.results_topic, 5, timeout_s=5)) == 5
    )


def test_the_store_can_keep_only_redacted_text(settings: Settings):
    settings.store_original_text = False
    body = "Card 4111 1111 1111 1111 charged twice, mail ana@example.com"
    produce(settings.kafka, [message("pii-1", body, customer={"email": "ana@example.com", "tier": "pro"})])
    run_until_handled(settings, 1)
    [(stored, _)] = Store(settings.database_url).results(["pii-1"])
    everything = stored.raw + json.dumps(stored.parsed)
    assert "4111" not in everything and "ana@example.com" not in everything
    assert "[CARD]" in stored.parsed["body"] and stored.customer_tier == "pro"


def wait_until(condition, what: str, timeout_s: float = 60.0) -> None:
    """Wait for a condition, not for a time: on a loaded machine each step takes what it takes."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_routing_change_applies_to_the_next_message_without_a_restart(settings: Settings, tmp_path):
    routing = tmp_path / "routing.yaml"
    routing.write_text("receivers:\n  - name: before\n    console: {}\nroute:\n  receiver: before\n")
    settings.routing_file = routing
    worker = Worker.from_settings(settings)
    thread = threading.Thread(target=worker.run, kwargs={"until": lambda s: s.handled >= 2})
    thread.start()
    store = Store(settings.database_url)
    try:
        produce(settings.kafka, [message("r1")])
        # each step waits for the worker to have done the last (joining the group, a loop turn that
        # notices the file): fixed sleeps let the steps overlap when the machine is slow
        wait_until(lambda: store.is_processed("r1") and store.count_due() == 0, "r1 to be triaged")
        routing.write_text("receivers:\n  - name: after\n    console: {}\nroute:\n  receiver: after\n")
        os.utime(routing, ns=(time.time_ns() + 10**9,) * 2)
        wait_until(lambda: set(worker.pipeline.routes.receivers) == {"after"}, "the routing file's reload")
        produce(settings.kafka, [message("r2")])
        wait_until(lambda: store.is_processed("r2"), "r2 to be triaged")
    finally:
        worker.stop()  # a no-op once it has ended by itself; a failed wait must not leave it running
        thread.join()
    assert worker.stats.handled == 2
    assert [result.receivers for _, result in store.results(["r1", "r2"])] == [["before"], ["after"]]


def test_an_llm_outage_gives_degraded_results_and_loses_nothing(settings: Settings):
    from tests.fakes.openai_server import FakeOpenAI, Reply

    with FakeOpenAI() as llm:
        llm.push(*[Reply(status=500)] * 100)
        settings.classifier.backend = "llm"
        settings.classifier.fallback = "embedded"
        settings.worker.concurrency = 1  # one message at a time: the count of LLM calls is exact
        settings.llm = settings.llm.model_copy(
            update={"base_url": llm.base_url, "api_key": "k", "max_attempts": 2, "breaker_failures": 2}
        )
        bodies = [f"Card 4111 1111 1111 1111 charged twice, write to ana{i}@example.com" for i in range(6)]
        produce(settings.kafka, [message(f"llm-{i}", body) for i, body in enumerate(bodies)])
        run_until_handled(settings, 6)
    results = read_topic(settings.kafka.bootstrap_servers, settings.kafka.results_topic, 6)
    records = [json.loads(r.value) for r in results]
    assert len(records) == 6 and all(r["degraded"] and r["model"] == "embedded:e5-small" for r in records)
    assert len(llm.requests) == 4  # two messages x two attempts, then the circuit opened
    sent = json.dumps(llm.requests)
    assert "4111" not in sent and "@example.com" not in sent  # nothing personal reached the LLM
