"""Kafka transport: client wiring, topic creation, dead-letter publishing and offset bookkeeping.

Nothing here knows what a support message is; pipeline.py does.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition

from triage.settings import KafkaSettings

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker cannot be reached or did not acknowledge; the work must be retried."""


class _FirstClientError(logging.Handler):
    """Keeps kafka-python's first error line since `reset()`, to be quoted in ours: it says why
    (connection refused, authentication failed), where its last one only says it gave up."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message: str | None = None

    def reset(self) -> None:
        self.message = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.message is None:
            self.message = record.getMessage()


_client_errors = _FirstClientError()


def position(topic: str, partition: int | str, offset: int | str | None = None) -> str:
    """A record's place as logs, commands and docs write it: `topic:partition:offset`
    (`support.messages:4:11`), or `topic:partition` for a partition."""
    return f"{topic}:{partition}" if offset is None else f"{topic}:{partition}:{offset}"


def quiet_client_logs() -> None:
    """kafka-python logs every failed connection attempt, tens of lines a minute while a broker is
    down. Our own lines say what is wrong once per change (see BrokerWatch), so the client's lines
    stay off the log unless it runs at DEBUG; its first error is kept for our messages."""
    client = logging.getLogger("kafka")
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    client.setLevel(logging.WARNING if verbose else logging.ERROR)
    client.propagate = verbose
    if _client_errors not in client.handlers:
        client.addHandler(_client_errors)


def client_config(kafka: KafkaSettings) -> dict[str, Any]:
    if not kafka.bootstrap_servers:
        raise BrokerUnavailable("no broker configured: set TRIAGE_KAFKA__BOOTSTRAP_SERVERS (host:port)")
    quiet_client_logs()
    return {
        "bootstrap_timeout_ms": kafka.bootstrap_timeout_ms,
        **kafka.client,
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
    }


def announce(kafka: KafkaSettings) -> None:
    """Say what the next seconds are spent on, before the first client waits for a broker (no
    broker configured: BrokerUnavailable, before anything is said)."""
    client_config(kafka)
    log.info(
        "connecting to Kafka at %s (giving up after %.0fs)",
        kafka.bootstrap_servers,
        kafka.bootstrap_timeout_ms / 1000,
    )


@contextlib.contextmanager
def reaching(kafka: KafkaSettings) -> Iterator[None]:
    """Around building a client: a broker that cannot be reached is one BrokerUnavailable line,
    with the client's own last error when it has one (connection refused, authentication failed)."""
    _client_errors.reset()
    try:
        yield
    except KafkaError as error:
        cause = _client_errors.message or f"{type(error).__name__}: {error}"
        raise BrokerUnavailable(
            f"cannot reach Kafka at {kafka.bootstrap_servers} "
            f"(TRIAGE_KAFKA__BOOTSTRAP_SERVERS) within {kafka.bootstrap_timeout_ms / 1000:.0f}s: {cause}"
        ) from None


def make_producer(kafka: KafkaSettings) -> KafkaProducer:
    with reaching(kafka):
        return KafkaProducer(**client_config(kafka), acks="all", linger_ms=5, retries=5)


def make_consumer(kafka: KafkaSettings) -> KafkaConsumer:
    with reaching(kafka):
        return KafkaConsumer(
            **client_config(kafka),
            group_id=kafka.group_id,
            enable_auto_commit=False,  # offsets are committed only after the work is stored
            auto_offset_reset="earliest",
            max_poll_records=kafka.max_poll_records,
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        )


def make_admin(kafka: KafkaSettings) -> KafkaAdminClient:
    with reaching(kafka):
        return KafkaAdminClient(**client_config(kafka))


def ensure_topics(kafka: KafkaSettings, topics: Iterable[str], timeout_s: float = 30.0) -> None:
    """Create the topics that do not exist yet and wait until the broker lists them."""
    wanted = set(topics)
    admin = make_admin(kafka)
    try:
        missing = wanted - set(admin.list_topics())
        if missing:
            new = [NewTopic(name, kafka.partitions, kafka.replication_factor) for name in sorted(missing)]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker created it first
                admin.create_topics(new)
        deadline = time.monotonic() + timeout_s
        while not wanted <= set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"topics {sorted(wanted)} did not appear within {timeout_s:.0f}s")
            time.sleep(0.1)
    finally:
        admin.close()


DLQ_REASON = "triage.error"
DLQ_CODE = "triage.error.code"


def dead_letter_headers(record: ConsumerRecord, code: str, detail: str) -> list[tuple[str, bytes]]:
    """The original record's headers plus where it came from, why it failed and when."""
    ours = {
        DLQ_CODE: code,
        DLQ_REASON: f"{code}: {detail}",
        "triage.original.topic": record.topic,
        "triage.original.partition": str(record.partition),
        "triage.original.offset": str(record.offset),
        "triage.failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    kept = [(name, value) for name, value in (record.headers or []) if name not in ours]
    return kept + [(name, value.encode("utf-8")) for name, value in ours.items()]


def publish_dead_letter(
    producer: KafkaProducer, topic: str, record: ConsumerRecord, code: str, detail: str, timeout_s: float = 30
) -> None:
    """Send the record as received to the dead-letter topic and wait for the broker's acknowledgement."""
    headers = dead_letter_headers(record, code, detail)
    try:
        producer.send(topic, key=record.key, value=record.value, headers=headers).get(timeout=timeout_s)
    except KafkaError as error:
        raise BrokerUnavailable(f"dead-letter topic {topic}: {error}") from error


class OffsetTracker:
    """Which offset each partition may commit: never past a message that is not finished.

    Offsets can have gaps (compaction, transaction markers), so the next offset to commit is the lowest
    unfinished offset, or one past the highest started offset when all are finished.
    """

    def __init__(self) -> None:
        self._unfinished: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def started(self, tp: TopicPartition, offset: int) -> None:
        self._unfinished.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def finished(self, tp: TopicPartition, offset: int) -> None:
        self._unfinished.get(tp, set()).discard(offset)

    def rewind(self, tp: TopicPartition, offset: int) -> None:
        """Forget everything from `offset` on: it will be fetched again."""
        self._unfinished[tp] = {o for o in self._unfinished.get(tp, set()) if o < offset}
        self._next[tp] = min(self._next.get(tp, offset), offset)

    def first_unfinished(self, tp: TopicPartition) -> int | None:
        """The offset to fetch from again to redo everything not finished (None: nothing known)."""
        if tp not in self._next:
            return None
        unfinished = self._unfinished.get(tp)
        return min(unfinished) if unfinished else self._next[tp]

    def committable(self, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Offsets worth committing now: safe, and ahead of what was committed already."""
        chosen = self._next.keys() if partitions is None else [p for p in partitions if p in self._next]
        offsets = {}
        for tp in chosen:
            offset = self.first_unfinished(tp)
            if offset > self._committed.get(tp, -1):
                offsets[tp] = offset
        return offsets

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self._unfinished.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)


def commit(consumer: KafkaConsumer, offsets: dict[TopicPartition, int], wait: bool = True) -> None:
    """Commit offsets; `wait=False` only sends the request (for the client's IO thread, which must
    not block: rebalance listeners run there)."""
    metadata = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()}
    if wait:
        consumer.commit(metadata)
    else:
        consumer.commit_async(metadata)
