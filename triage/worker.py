"""The run loop: poll, hand each record to the pipeline, send the outbox, commit what is finished.

At-least-once in, exactly-once effects out: an offset is committed only once every message before it
is stored (or dead-lettered), and the store turns a redelivery into a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import TopicPartition

from triage import kafka
from triage.classify import Classifier, make_classifier
from triage.kafka import BrokerUnavailable, OffsetTracker
from triage.ops import metrics
from triage.pipeline import Outcome, Pipeline
from triage.receivers.outbox import Outbox
from triage.receivers.registry import Receivers
from triage.routing import RoutingTree, load_routing
from triage.routing.reload import RoutingReloader
from triage.settings import Settings
from triage.store import Store, StoreUnavailable

log = logging.getLogger(__name__)

TRANSIENT = (StoreUnavailable, BrokerUnavailable)
MAX_ATTEMPTS = 3  # attempts at a record that fails for a reason other than a transient outage


@dataclass
class Stats:
    consumed: int = 0
    outcomes: dict[str, int] = field(
        default_factory=lambda: {"processed": 0, "duplicate": 0, "dead_lettered": 0}
    )
    outbox_pending: int = 0

    @property
    def handled(self) -> int:
        return sum(self.outcomes.values())


def worker_id() -> str:
    """Names this process in delivery claims: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.worker.commit(revoked)
        self.worker.tracker.forget(revoked)
        log.info("partitions revoked: %s", sorted(f"{tp.topic}-{tp.partition}" for tp in revoked))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted(f"{tp.topic}-{tp.partition}" for tp in assigned))


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        classifier: Classifier,
        routes: RoutingTree,
        producer: KafkaProducer,
        consumer: KafkaConsumer,
    ) -> None:
        self.settings = settings
        self.store = store
        self.producer = producer
        self.consumer = consumer
        self.pipeline = Pipeline(settings, store, classifier, routes, producer)
        self.receivers = Receivers(settings, producer, store)
        lease = timedelta(seconds=settings.worker.delivery_lease_s)
        self.outbox = Outbox(store, self.receivers.senders(routes), worker_id(), lease)
        self.routing = RoutingReloader(settings.routing_path(), routes, self._use_routes)
        self.tracker = OffsetTracker()
        self.stats = Stats()
        self._stopping = threading.Event()
        self._backoff_s = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Worker:
        """Check every dependency once, failing with one clear line (StoreUnavailable, RoutingError, ...)."""
        routes = load_routing(settings.routing_path())
        classifier = make_classifier(settings)
        store = Store(settings.database_url)
        store.upgrade()
        if settings.kafka.create_topics:
            k = settings.kafka
            kafka.ensure_topics(k, [k.input_topic, k.results_topic, k.dlq_topic])
        producer = kafka.make_producer(settings.kafka)
        worker = cls(settings, store, classifier, routes, producer, kafka.make_consumer(settings.kafka))
        try:
            worker.receivers.check()
        except Exception:
            worker.consumer.close(autocommit=False)
            producer.close(timeout=5)
            raise
        return worker

    def _use_routes(self, routes: RoutingTree) -> None:
        self.pipeline.routes = routes
        self.outbox.use(self.receivers.senders(routes))

    def stop(self) -> None:
        """Finish the record at hand, commit what is done, and leave the loop."""
        self._stopping.set()

    def run(self, until: Callable[[Stats], bool] | None = None) -> Stats:
        """Run until stop() is called, or until `until(stats)` holds and every due delivery is made."""
        self.consumer.subscribe([self.settings.kafka.input_topic], listener=_CommitOnRevoke(self))
        self.outbox.start()
        try:
            while not self._stopping.is_set():
                self.routing.check()
                batch = self.consumer.poll(timeout_ms=self.settings.kafka.poll_timeout_ms)
                for tp, records in batch.items():
                    self._process(tp, records)
                if batch:
                    self.outbox.wake()
                self.commit()
                if until and until(self.stats) and self._outbox_idle():
                    break
                if self._backoff_s:
                    self._stopping.wait(self._backoff_s)
        finally:
            self.commit()
            self.consumer.close(autocommit=False)
            self.outbox.stop()
            self.producer.close(timeout=10)
            self.store.close()
        return self.stats

    def _process(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        for record in records:
            if self._stopping.is_set():
                self.consumer.seek(tp, record.offset)  # not started: fetched again after a restart
                return
            self.stats.consumed += 1
            metrics.MESSAGES_CONSUMED.inc()
            self.tracker.started(tp, record.offset)
            try:
                outcome = self._handle(record)
            except TRANSIENT as error:
                self.tracker.rewind(tp, record.offset)
                self.consumer.seek(tp, record.offset)
                self.stats.consumed -= 1
                self._transient_failure(error)
                return
            self.tracker.finished(tp, record.offset)
            self.stats.outcomes[outcome] += 1
            self._backoff_s = 0.0

    def _handle(self, record: ConsumerRecord) -> Outcome:
        """The pipeline, with a bounded number of attempts for failures that are not outages."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self.pipeline.handle(record)
            except TRANSIENT:
                raise
            except Exception as error:
                log.exception(
                    "processing %s-%s@%s failed (attempt %d)",
                    record.topic,
                    record.partition,
                    record.offset,
                    attempt,
                )
                last = error
        self.pipeline.dead_letter(record, "processing_failed", f"{type(last).__name__}: {last}")
        return "dead_lettered"

    def _transient_failure(self, error: Exception) -> None:
        wset = self.settings.worker
        self._backoff_s = min(wset.retry_backoff_max_s, max(wset.retry_backoff_s, self._backoff_s * 2))
        cause = "store" if isinstance(error, StoreUnavailable) else "broker"
        metrics.PROCESSING_RETRIES.labels(cause).inc()
        log.warning("%s; retrying in %.1fs", error, self._backoff_s)

    def _outbox_idle(self) -> bool:
        try:
            return self.store.count_due() == 0
        except StoreUnavailable:
            return False

    def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        offsets = self.tracker.committable(partitions)
        if not offsets:
            return
        try:
            kafka.commit(self.consumer, offsets)
        except (CommitFailedError, KafkaError) as error:
            log.warning(
                "offset commit failed (the records will be redelivered, with no second effect): %s", error
            )
            return
        self.tracker.committed(offsets)
