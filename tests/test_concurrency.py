"""Many messages in flight on the real broker: order per conversation, bounded buffers, safe commits,
and a second worker joining mid-stream. The LLM is a stand-in with a fixed latency."""

import json
import threading
import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import REGISTRY
from sqlalchemy import text

from tests.conftest import message, read_topic
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from triage import kafka as transport
from triage.settings import Settings
from triage.store import Store
from triage.worker import Worker


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def slow_llm(fake: FakeOpenAI, latency_s: float, hold: threading.Event | None = None) -> None:
    """Every answer takes `latency_s`; a message containing HOLD waits for `hold` as well."""

    def respond(request: dict) -> dict:
        if hold is not None and "HOLD" in request["messages"][-1]["content"]:
            hold.wait(30)
        time.sleep(latency_s)
        return DEFAULT_ANSWER

    fake.responder = respond


def use_llm(settings: Settings, fake: FakeOpenAI, concurrency: int) -> None:
    settings.classifier.backend = "llm"
    settings.classifier.fallback = "rules"
    settings.llm = settings.llm.model_copy(update={"base_url": fake.base_url, "api_key": "k"})
    settings.worker.concurrency = concurrency


def conversation_messages(conversations: int, per_conversation: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs, the conversations interleaved as they would be in real traffic."""
    return [
        (f"conv-{c}".encode(), message(f"conv-{c}-{n:03d}", f"message {n}", conversation_id=f"conv-{c}"))
        for n in range(per_conversation)
        for c in range(conversations)
    ]


def produce_keyed(
    settings: Settings, records: list[tuple[bytes, bytes]], partition: int | None = None
) -> None:
    transport.ensure_topics(settings.kafka, [settings.kafka.input_topic])
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    for key, value in records:
        producer.send(settings.kafka.input_topic, key=key, value=value, partition=partition)
    producer.flush()
    producer.close()


def assert_in_order_per_conversation(results: list) -> None:
    by_conversation: dict[str, list[str]] = {}
    for record in results:
        payload = json.loads(record.value)
        by_conversation.setdefault(payload["conversation_id"], []).append(payload["message_id"])
    for conversation, ids in by_conversation.items():
        assert ids == sorted(ids), f"{conversation} out of order in the results topic: {ids}"


def run_in_thread(worker: Worker, until=None) -> threading.Thread:
    thread = threading.Thread(target=worker.run, kwargs={"until": until}, daemon=True)
    thread.start()
    return thread


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_many_in_flight_at_once_in_order_per_conversation(settings: Settings, llm: FakeOpenAI):
    slow_llm(llm, 0.05)
    use_llm(settings, llm, concurrency=8)
    produce_keyed(settings, conversation_messages(conversations=12, per_conversation=10))

    worker = Worker.from_settings(settings)
    stats = worker.run(until=lambda s: s.handled >= 120)

    assert stats.outcomes["processed"] == 120
    assert 2 < llm.peak_active <= 8  # concurrent, and never more than the setting allows
    results = read_topic(settings.kafka.bootstrap_servers, settings.kafka.results_topic, 120)
    assert len(results) == 120
    assert_in_order_per_conversation(results)


def test_fetching_pauses_when_the_in_flight_buffer_is_full(settings: Settings, llm: FakeOpenAI):
    slow_llm(llm, 0.1)
    use_llm(settings, llm, concurrency=2)
    settings.worker.max_in_flight = 4
    settings.kafka.max_poll_records = 3
    produce_keyed(settings, conversation_messages(conversations=10, per_conversation=3))

    worker = Worker.from_settings(settings)
    peaks = {"in_flight": 0, "paused": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            if worker.executor is not None:
                peaks["in_flight"] = max(peaks["in_flight"], worker.executor.in_flight)
            peaks["paused"] = max(peaks["paused"], REGISTRY.get_sample_value("triage_fetch_paused") or 0.0)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stats = worker.run(until=lambda s: s.handled >= 30)
    done.set()
    sampler.join()

    assert stats.outcomes["processed"] == 30
    assert peaks["paused"] == 1.0
    assert peaks["in_flight"] <= 4 - 1 + 3  # below the limit when the last poll ran, plus one poll's worth


def committed_offset(settings: Settings, tp: TopicPartition) -> int | None:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.kafka.group_id,
        enable_auto_commit=False,
    )
    try:
        return consumer.committed(tp)
    finally:
        consumer.close(autocommit=False)


def test_no_offset_is_committed_past_an_unfinished_message(settings: Settings, llm: FakeOpenAI):
    hold = threading.Event()
    slow_llm(llm, 0.0, hold)
    use_llm(settings, llm, concurrency=4)
    settings.worker.shutdown_grace_s = 0.5
    records = conversation_messages(conversations=10, per_conversation=1)
    records[3] = (b"conv-held", message("held", "HOLD this one", conversation_id="conv-held"))
    produce_keyed(settings, records, partition=0)  # one partition: offsets 0..9, "held" at 3

    first = Worker.from_settings(settings)
    thread = run_in_thread(first)
    store = Store(settings.database_url)
    wait_for(lambda: all(store.is_processed(f"conv-{c}-000") for c in range(10) if c != 3), 30, "the others")
    time.sleep(0.5)  # a few loop turns: every finished offset that may be committed is
    tp = TopicPartition(settings.kafka.input_topic, 0)
    assert committed_offset(settings, tp) == 3  # messages 4..9 are done, but 3 is not

    first.stop()  # the held message is given up after the grace period
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert committed_offset(settings, tp) == 3 and not store.is_processed("held")

    hold.set()
    second = Worker.from_settings(settings)
    stats = second.run(until=lambda s: s.handled >= 7)
    assert stats.handled == 7  # fetched again from offset 3: "held", then 4..9 with no second effect
    assert stats.outcomes["dead_lettered"] == 0 and store.is_processed("held")


def test_a_second_worker_joining_mid_stream_loses_nothing_and_repeats_nothing(
    settings: Settings, llm: FakeOpenAI, postgres_url: str
):
    slow_llm(llm, 0.02)
    use_llm(settings, llm, concurrency=8)
    settings.database_url = postgres_url
    settings.kafka.partitions = 6
    total = 240
    produce_keyed(settings, conversation_messages(conversations=24, per_conversation=10))
    store = Store(postgres_url)
    store.upgrade()

    def stored() -> int:
        with store.session() as session:
            return session.execute(text("SELECT count(*) FROM messages")).scalar_one()

    first, second = Worker.from_settings(settings), Worker.from_settings(settings)
    threads = [run_in_thread(first)]
    wait_for(lambda: stored() >= 40, 60, "the first worker to get going")
    threads.append(run_in_thread(second))
    wait_for(lambda: stored() == total, 120, "every message stored")
    wait_for(lambda: store.count_due() == 0, 60, "every delivery made")
    for worker in (first, second):
        worker.stop()
    for thread in threads:
        thread.join(timeout=60)

    assert first.stats.outcomes["processed"] > 0 and second.stats.outcomes["processed"] > 0
    assert first.stats.outcomes["processed"] + second.stats.outcomes["processed"] == total
    results = read_topic(settings.kafka.bootstrap_servers, settings.kafka.results_topic, total)
    ids = [json.loads(r.value)["message_id"] for r in results]
    assert len(ids) == total and len(set(ids)) == total  # one record each: none lost, none repeated
    assert_in_order_per_conversation(results)
