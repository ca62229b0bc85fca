"""The key-ordered pool on its own: order per key, real concurrency across keys, dropping unstarted work."""

import threading
import time
from dataclasses import dataclass

from kafka.structs import TopicPartition

from triage.dispatch import KeyedExecutor


@dataclass
class Record:
    """The four fields of a Kafka record the executor reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


def wait_for_all(executor: KeyedExecutor, count: int) -> list:
    done = []
    deadline = time.monotonic() + 30
    while len(done) < count and time.monotonic() < deadline:
        item = executor.wait_done(0.5)
        if item:
            done.append(item)
    return done


def test_one_record_at_a_time_per_key_in_order_and_many_keys_at_once():
    seen: dict[bytes, list[int]] = {}
    running: dict[bytes, int] = {}
    lock = threading.Lock()
    peak = {"all": 0, "per_key": 0}

    def handle(record: Record) -> str:
        with lock:
            running[record.key] = running.get(record.key, 0) + 1
            peak["all"] = max(peak["all"], sum(running.values()))
            peak["per_key"] = max(peak["per_key"], running[record.key])
            seen.setdefault(record.key, []).append(record.offset)
        time.sleep(0.005)
        with lock:
            running[record.key] -= 1
        return "processed"

    executor = KeyedExecutor(handle, threads=8)
    records = [Record("t", 0, offset, f"conv-{offset % 10}".encode()) for offset in range(300)]
    for record in records:
        executor.submit(record)
    done = wait_for_all(executor, 300)
    executor.stop()

    assert len(done) == 300 and executor.in_flight == 0
    assert {d.result for d in done} == {"processed"}
    for key, offsets in seen.items():
        assert offsets == sorted(offsets), f"{key!r} ran out of order"
    assert peak["per_key"] == 1
    assert 1 < peak["all"] <= 8


def test_dropping_a_partition_forgets_its_waiting_records_but_lets_the_running_one_finish():
    release = threading.Event()
    handled = []

    def handle(record: Record) -> str:
        release.wait(10)
        handled.append(record.offset)
        return "processed"

    executor = KeyedExecutor(handle, threads=2)
    for offset in range(5):
        executor.submit(Record("t", 0, offset, b"same-conversation"))
    executor.submit(Record("t", 1, 0, b"other-partition"))

    dropped = executor.drop_waiting([TopicPartition("t", 0)])
    release.set()
    done = wait_for_all(executor, 2)
    executor.stop()

    assert dropped == [(TopicPartition("t", 0), offset) for offset in range(1, 5)]
    assert sorted((d.tp.partition, d.offset) for d in done) == [(0, 0), (1, 0)]
    assert sorted(handled) == [0, 0] and executor.in_flight == 0
