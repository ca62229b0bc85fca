"""The dead-letter topic from the operator's side: what failed and why, and replaying it after a fix.

Reading. The topic is read from the beginning by a consumer of its own (assign + seek, no group, no
commits). The end is where polls stay empty for `QUIET_S`, but never before the end offsets the broker
reported when the read began: Apache Kafka's are exact, so a slow fetch cannot cut a listing short
there; Tansu's lag behind the real end, so there the quiet period decides. Past those offsets the read
goes on at most `SETTLE_S`, so that a topic others keep writing to still has an end.

No duplicates: the replay ledger. A replay must never re-drive a record it re-drove before, whatever
filters either run used. A consumer-group offset cannot say that (a `--reason` run would pass over
the records it filtered out), and the dead-letter records themselves cannot be changed. So each
replayed record is written down in a ledger topic, `<dlq topic>.replayed` (one partition, compacted,
keyed by the dead-letter position `topic:partition:offset`; the value says where the record came
from, when it failed and where it was re-sent). A replay reads the ledger before it sends anything
and skips every record already in it. An entry counts only when the dead letter's original
position and failure time match too, so a dead-letter topic deleted and re-created (offsets start
at 0 again) does not hide its new records behind old entries.

Order of writes: a batch goes to the input topic first and, once the broker acknowledged it, its
ledger entries. A crash between the two can re-drive at most that batch again on the next run; a
valid message then has no second effect, because the worker's store never processes a message id
twice. The other order could lose records, which is worse. Run one replay at a time: two at once
read the same ledger and can both send the same records.

A replayed record that fails again is dead-lettered again: a new dead letter, at a new position,
carrying `triage.replayed_from`, which a later replay (after the next fix) may send once more.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.producer.future import FutureRecordMetadata, RecordMetadata
from kafka.structs import TopicPartition

from triage.kafka import (
    DLQ_CODE,
    DLQ_REASON,
    BrokerUnavailable,
    client_config,
    ensure_topics,
    make_admin,
    make_producer,
    position,
    reaching,
)
from triage.settings import KafkaSettings

FAILED_AT = "triage.failed_at"
ORIGINAL_TOPIC = "triage.original.topic"
ORIGINAL_PARTITION = "triage.original.partition"
ORIGINAL_OFFSET = "triage.original.offset"
REPLAYED_FROM = "triage.replayed_from"
# Stripped from a record before it is replayed: they describe a failure, not the message.
DEAD_LETTER_HEADERS = frozenset(
    {DLQ_REASON, DLQ_CODE, FAILED_AT, ORIGINAL_TOPIC, ORIGINAL_PARTITION, ORIGINAL_OFFSET, REPLAYED_FROM}
)
# Failures that a fix of the worker can cure; every other code is about the record's own content.
RETRYABLE_CODES = frozenset({"processing_failed"})
# Every code the worker writes: parse_message's (triage/message.py), the input decoder's (triage/input/:
# mapping, presets, schema registry formats) and the worker's own.
CONTENT_CODES = frozenset(
    {
        "empty_value",
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "invalid_unicode",
        "body_too_large",
        "invalid_schema",
        "unmappable",
        "schema_unknown",
        "undecodable",
    }
)
KNOWN_CODES = CONTENT_CODES | RETRYABLE_CODES

QUIET_S = 1.5  # no records for this long: the end of the topic
SETTLE_S = 5.0  # past the reported end offsets, read on at most this long (others may keep writing)
LOOKBACK = 10_000  # records per partition searched for one whose sending was in doubt
STALL_S = 30.0  # no progress for this long while behind the reported end offsets: an error
POLL_MS = 200
BATCH = 100  # records sent before their ledger entries are written


class DLQError(Exception):
    """A dead-letter operation that cannot go ahead; the message is one line."""


Header = tuple[str, bytes | None]


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]

    @classmethod
    def from_record(cls, record: ConsumerRecord) -> DeadLetter:
        headers = tuple((name, value) for name, value in record.headers or [])
        return cls(record.topic, record.partition, record.offset, record.key, record.value, headers)

    def header(self, name: str) -> str:
        """The last value of header `name` as text, "" when there is none."""
        values = [value for key, value in self.headers if key == name]
        return (values[-1] or b"").decode("utf-8", "replace") if values else ""

    @property
    def position(self) -> str:
        """`topic:partition:offset`, the value of `triage.replayed_from` on its replay."""
        return position(self.topic, self.partition, self.offset)

    @property
    def code(self) -> str:
        return self.header(DLQ_CODE) or "unknown"

    @property
    def detail(self) -> str:
        """The reason without its leading `code: `."""
        reason = self.header(DLQ_REASON)
        return reason.removeprefix(f"{self.code}: ")

    @property
    def failed_at(self) -> datetime | None:
        try:
            when = datetime.fromisoformat(self.header(FAILED_AT))
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    @property
    def original(self) -> str:
        """`topic:partition:offset` of the record as the worker consumed it."""
        parts = (self.header(ORIGINAL_TOPIC), self.header(ORIGINAL_PARTITION), self.header(ORIGINAL_OFFSET))
        return ":".join(parts) if any(parts) else ""

    def replay_headers(self) -> list[Header]:
        kept = [(name, value) for name, value in self.headers if name not in DEAD_LETTER_HEADERS]
        return [*kept, (REPLAYED_FROM, self.position.encode("utf-8"))]

    def describe(self, replayed: bool) -> dict[str, object]:
        """One JSON-ready line for `triage dlq list --json`."""
        topic, _, rest = self.original.partition(":")
        partition, _, offset = rest.partition(":")
        return {
            "dlq_topic": self.topic,
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "failed_at": self.header(FAILED_AT) or None,
            "code": self.code,
            "reason": self.detail,
            "original_topic": topic or None,
            "original_partition": int(partition) if partition.isdigit() else None,
            "original_offset": int(offset) if offset.isdigit() else None,
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "size": len(self.value or b""),
            "replayed": replayed,
            "replayed_from": self.header(REPLAYED_FROM) or None,
        }


@dataclass(frozen=True)
class Filters:
    since: timedelta | None = None
    codes: frozenset[str] = frozenset()

    def match(self, letter: DeadLetter, now: datetime) -> bool:
        if self.codes and letter.code not in self.codes:
            return False
        if self.since is None:
            return True
        failed_at = letter.failed_at
        return failed_at is not None and failed_at >= now - self.since


def check_codes(codes: frozenset[str], found: set[str]) -> None:
    """A `--reason` code that the worker never writes and no record carries is a typo: say so."""
    known = KNOWN_CODES | found
    unknown = sorted(codes - known)
    if unknown:
        raise DLQError(
            f"--reason {', '.join(unknown)}: unknown code; known codes: {', '.join(sorted(known))}"
        )


@dataclass(frozen=True)
class DeadLetters:
    """The dead-letter topic's records in (partition, offset) order, and the ledger's entries."""

    letters: list[DeadLetter]
    ledger: dict[str, tuple[str, str]]  # dead-letter position -> (original position, failed_at)

    def replayed(self, letter: DeadLetter) -> bool:
        return self.ledger.get(letter.position) == (letter.original, letter.header(FAILED_AT))

    def select(self, filters: Filters, now: datetime | None = None) -> tuple[list[DeadLetter], int]:
        """The records that match, and how many did not (DLQError for a `--reason` code nobody uses)."""
        check_codes(filters.codes, {letter.code for letter in self.letters})
        now = now or datetime.now(UTC)
        matching = [letter for letter in self.letters if filters.match(letter, now)]
        return matching, len(self.letters) - len(matching)


@dataclass(frozen=True)
class ReplayPlan:
    pending: list[DeadLetter]
    already_replayed: int
    filtered_out: int

    def content_failures(self) -> dict[str, int]:
        """Pending records per code that a worker fix does not cure (they will fail again)."""
        counts: dict[str, int] = {}
        for letter in self.pending:
            if letter.code not in RETRYABLE_CODES:
                counts[letter.code] = counts.get(letter.code, 0) + 1
        return counts


def plan_replay(dead: DeadLetters, filters: Filters) -> ReplayPlan:
    matching, filtered_out = dead.select(filters)
    pending = [letter for letter in matching if not dead.replayed(letter)]
    return ReplayPlan(pending, len(matching) - len(pending), filtered_out)


def ledger_topic(kafka: KafkaSettings) -> str:
    return f"{kafka.dlq_topic}.replayed"


def read_dead_letters(kafka: KafkaSettings) -> DeadLetters:
    """Everything on the dead-letter topic and the replay ledger (which may not exist yet)."""
    consumer = _consumer(kafka)
    ledger = ledger_topic(kafka)
    try:
        dlq_partitions = _partitions(consumer, kafka.dlq_topic)
        if not dlq_partitions:
            raise DLQError(
                f"dead-letter topic {kafka.dlq_topic!r} does not exist at {kafka.bootstrap_servers} "
                "(TRIAGE_KAFKA__DLQ_TOPIC)"
            )
        records = _read_to_end(consumer, dlq_partitions + _partitions(consumer, ledger))
    except KafkaError as error:
        raise BrokerUnavailable(f"reading {kafka.dlq_topic}: {error}") from None
    finally:
        consumer.close()
    letters = [DeadLetter.from_record(r) for r in records if r.topic == kafka.dlq_topic]
    letters.sort(key=lambda letter: (letter.partition, letter.offset))
    entries = (_ledger_entry(r) for r in records if r.topic == ledger)
    return DeadLetters(letters, dict(entry for entry in entries if entry))


def replay(kafka: KafkaSettings, letters: list[DeadLetter]) -> None:
    """Send each record to the input topic, then write its ledger entry, in batches."""
    if not letters:
        return
    if kafka.create_topics:
        ensure_topics(kafka, [kafka.input_topic])
    _ensure_ledger(kafka)
    producer = make_producer(kafka)
    try:
        for start in range(0, len(letters), BATCH):
            _replay_batch(producer, kafka, letters[start : start + BATCH])
    except KafkaError as error:  # a send that could not even start (no metadata for the topic)
        raise BrokerUnavailable(f"replaying to {kafka.input_topic}: {error}") from None
    finally:
        producer.close(timeout=10)


def _replay_batch(producer: KafkaProducer, kafka: KafkaSettings, batch: list[DeadLetter]) -> None:
    """The batch to the input topic; then, for each record the broker acknowledged, its ledger entry."""
    sent, failure = _acknowledged(
        producer,
        [
            producer.send(kafka.input_topic, key=one.key, value=one.value, headers=one.replay_headers())
            for one in batch
        ],
    )
    ledger = ledger_topic(kafka)
    _, ledger_failure = _acknowledged(
        producer,
        [
            producer.send(ledger, key=one.position.encode("utf-8"), value=_ledger_value(one, meta))
            for one, meta in zip(batch, sent, strict=True)
            if meta is not None
        ],
    )
    if failure:
        raise BrokerUnavailable(f"replaying to {kafka.input_topic}: {failure}")
    if ledger_failure:
        raise BrokerUnavailable(f"writing the replay ledger {ledger}: {ledger_failure}")


def _consumer(kafka: KafkaSettings) -> KafkaConsumer:
    with reaching(kafka):
        return KafkaConsumer(
            **client_config(kafka),
            group_id=None,
            enable_auto_commit=False,
            max_poll_records=kafka.max_poll_records,
        )


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions; none when it does not exist."""
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def already_sent(kafka: KafkaSettings, topic: str, partition: int, offset: int) -> bool:
    """Whether the dead-letter topic holds the dead letter of this input record, among its newest
    records: for a dead letter whose sender died between the broker's acknowledgement and the store's
    mark, so that it is not sent a second time."""
    wanted = {ORIGINAL_TOPIC: topic, ORIGINAL_PARTITION: str(partition), ORIGINAL_OFFSET: str(offset)}
    return any(
        all(headers.get(name) == value for name, value in wanted.items())
        for headers in recent_headers(kafka, kafka.dlq_topic)
    )


def recent_headers(kafka: KafkaSettings, topic: str) -> list[dict[str, str]]:
    """The headers of the newest LOOKBACK records of each partition of `topic`: where a record in
    doubt (a dead letter, a result) is looked for before it is sent again."""
    consumer = _consumer(kafka)
    try:
        partitions = _partitions(consumer, topic)
        if not partitions:  # not there, or not readable: searching nothing would find nothing
            raise BrokerUnavailable(f"cannot read topic {topic!r} at {kafka.bootstrap_servers}")
        ends = consumer.end_offsets(partitions)
        starts = {tp: max(0, end - LOOKBACK) for tp, end in ends.items()}
        return [
            {name: (value or b"").decode("utf-8", "replace") for name, value in record.headers or []}
            for record in _read_to_end(consumer, partitions, starts)
        ]
    except KafkaError as error:
        raise BrokerUnavailable(f"reading the newest records of {topic}: {error}") from error
    finally:
        consumer.close()


def _read_to_end(
    consumer: KafkaConsumer, partitions: list[TopicPartition], starts: dict[TopicPartition, int] | None = None
) -> list[ConsumerRecord]:
    consumer.assign(partitions)
    if starts is None:
        consumer.seek_to_beginning()
    else:
        for tp, start in starts.items():
            consumer.seek(tp, start)
    ends = consumer.end_offsets(partitions)
    records: list[ConsumerRecord] = []
    last_progress = time.monotonic()
    reached: float | None = None  # when every position first passed the reported end offsets
    while True:
        batches = consumer.poll(timeout_ms=POLL_MS)
        for batch in batches.values():
            records.extend(batch)
        now = time.monotonic()
        if batches:
            last_progress = now
        if reached is None and all(consumer.position(tp) >= ends[tp] for tp in partitions):
            reached = now
        if reached is not None and (now - last_progress >= QUIET_S or now - reached >= SETTLE_S):
            return records  # quiet, or a topic others keep writing to: what came after the start is new
        if now - last_progress >= STALL_S:
            positions = {tp: consumer.position(tp) for tp in partitions}
            tp = next(tp for tp in partitions if positions[tp] < ends[tp])
            raise BrokerUnavailable(
                f"reading {tp.topic} partition {tp.partition}: stuck at offset {positions[tp]} "
                f"of {ends[tp]} for {STALL_S:.0f}s"
            )


def _ledger_entry(record: ConsumerRecord) -> tuple[str, tuple[str, str]] | None:
    try:
        entry = json.loads(record.value)
        return entry["dlq"], (entry["original"], entry["failed_at"])
    except (TypeError, ValueError, KeyError):
        return None  # not one of ours: it marks nothing


def _ledger_value(letter: DeadLetter, sent: RecordMetadata) -> bytes:
    entry = {
        "dlq": letter.position,
        "original": letter.original,
        "failed_at": letter.header(FAILED_AT),
        "code": letter.code,
        "replayed_to": position(sent.topic, sent.partition, sent.offset),
        "replayed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return json.dumps(entry).encode("utf-8")


def _acknowledged(
    producer: KafkaProducer, futures: list[FutureRecordMetadata]
) -> tuple[list[RecordMetadata | None], KafkaError | None]:
    """Each send's metadata (None where it failed) and the first failure."""
    producer.flush()
    sent: list[RecordMetadata | None] = []
    failure: KafkaError | None = None
    for future in futures:
        try:
            sent.append(future.get(timeout=30))
        except KafkaError as error:
            sent.append(None)
            failure = failure or error
    return sent, failure


def _ensure_ledger(kafka: KafkaSettings) -> None:
    """Create the ledger topic (one partition, compacted: one small entry per replayed record, kept)."""
    topic = ledger_topic(kafka)
    admin = make_admin(kafka)
    try:
        if topic in admin.list_topics():
            return
        if not kafka.create_topics:
            raise DLQError(
                f"the replay ledger topic {topic!r} does not exist: create it with one partition and "
                "cleanup.policy=compact, or set TRIAGE_KAFKA__CREATE_TOPICS=true"
            )
        ledger = NewTopic(topic, 1, kafka.replication_factor, topic_configs={"cleanup.policy": "compact"})
        with contextlib.suppress(TopicAlreadyExistsError):  # another replay created it first
            admin.create_topics([ledger])
    except KafkaError as error:
        raise BrokerUnavailable(f"creating {topic}: {error}") from None
    finally:
        admin.close()
    ensure_topics(kafka, [topic])  # waits until the broker lists it
