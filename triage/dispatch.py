"""Key-ordered concurrency: many records in flight, one at a time per key, in arrival order per key.

In the spirit of Confluent Parallel Consumer's KEY ordering. The worker's poll loop submits records
with their key (partition + Kafka key, i.e. the conversation); a pool of threads runs them. A record
starts only when the record before it with the same key has finished, so each conversation is
handled in order while hundreds of others run beside it.

Threads rather than asyncio: the Kafka client, the SQL store, slack_sdk and the embedded model are
all blocking libraries, and a classification spends its time waiting on I/O (an LLM call) or inside
native code that releases the GIL (the embedding engine, the database driver).

Finished work is reported through `completed()`, drained by the poll loop's thread, which alone
touches the consumer and the offset bookkeeping. Threads are daemons: at shutdown, work that did not
finish within the grace period is abandoned, never reported, so its offset is never committed.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition


@dataclass(frozen=True)
class Done:
    """A finished record and what became of it (the handler's return value)."""

    tp: TopicPartition
    offset: int
    result: Any


def ordering_key(record: ConsumerRecord) -> Hashable:
    """The partition plus the Kafka key (the conversation); a record without a key is ordered with
    the other key-less records of its partition."""
    return (record.topic, record.partition, record.key)


class KeyedExecutor:
    def __init__(self, handler: Callable[[ConsumerRecord], Any], threads: int) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self._waiting: dict[Hashable, deque[ConsumerRecord]] = {}  # per key: running one first
        self._ready: queue.SimpleQueue[ConsumerRecord | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self._in_flight = 0
        self._running: dict[TopicPartition, int] = {}
        self._threads = [
            threading.Thread(target=self._work, name=f"triage-{n}", daemon=True) for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def in_flight(self) -> int:
        """Records submitted and not yet finished (waiting for their key, or running)."""
        return self._in_flight

    def submit(self, record: ConsumerRecord) -> None:
        key = ordering_key(record)
        with self._lock:
            self._in_flight += 1
            line = self._waiting.setdefault(key, deque())
            line.append(record)
            if len(line) == 1:
                self._start(record)

    def completed(self) -> list[Done]:
        """What finished since the last call."""
        done = []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                return done

    def wait_done(self, timeout_s: float) -> Done | None:
        try:
            return self._done.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def drop_waiting(self, partitions: Iterable[TopicPartition]) -> list[tuple[TopicPartition, int]]:
        """Forget records of these partitions that have not started; returns their positions.

        Used when partitions are revoked or the worker stops: those records are fetched again by
        whoever owns the partition next. Running records are left to finish.
        """
        wanted = {(tp.topic, tp.partition) for tp in partitions}
        dropped = []
        with self._lock:
            for key, line in list(self._waiting.items()):
                if key[:2] not in wanted:
                    continue
                running = line.popleft()
                for record in line:
                    dropped.append((TopicPartition(record.topic, record.partition), record.offset))
                self._in_flight -= len(line)
                line.clear()
                line.append(running)
        return dropped

    def running(self, partitions: Iterable[TopicPartition] | None = None) -> int:
        with self._lock:
            if partitions is None:
                return sum(self._running.values())
            return sum(self._running.get(tp, 0) for tp in partitions)

    def stop(self) -> None:
        """Let the threads go once the work at hand is done (they are daemons: nothing waits)."""
        for _ in self._threads:
            self._ready.put(None)

    def _start(self, record: ConsumerRecord) -> None:
        tp = TopicPartition(record.topic, record.partition)
        self._running[tp] = self._running.get(tp, 0) + 1
        self._ready.put(record)

    def _work(self) -> None:
        while (record := self._ready.get()) is not None:
            result = self._handler(record)
            tp = TopicPartition(record.topic, record.partition)
            with self._lock:
                self._in_flight -= 1
                self._running[tp] -= 1
                key = ordering_key(record)
                line = self._waiting[key]
                line.popleft()
                if line:
                    self._start(line[0])
                else:
                    del self._waiting[key]
            self._done.put(Done(tp, record.offset, result))
