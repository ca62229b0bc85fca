"""The run loop: poll, hand records to the pipeline on a key-ordered pool, commit what is finished.

At-least-once in, exactly-once effects out: an offset is committed only once every message before it
is stored (or dead-lettered), and the store turns a redelivery into a no-op. Many messages are in
flight at once (TRIAGE_WORKER__CONCURRENCY), one at a time per conversation (see dispatch.py); when
too many are fetched and unfinished, fetching pauses until the pool catches up, so memory stays
bounded however far behind the worker is.

Only this loop's thread touches the consumer and the offset tracker; the pool's threads report back
through the executor's completion queue.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import TopicPartition

from triage import kafka
from triage.classify import Classifier, check_backend, make_classifier
from triage.classify.budget import classifier_notes
from triage.dispatch import Done, KeyedExecutor
from triage.feedback.loop import FeedbackLoop
from triage.input.decoder import Decoder
from triage.input.registry import RegistryUnavailable
from triage.kafka import BrokerUnavailable, OffsetTracker
from triage.oncall import acks, resolves
from triage.oncall.escalations import Escalator
from triage.oncall.gate import Gate
from triage.ops import metrics
from triage.ops.health import BrokerWatch, HealthWatch, OutboxWatch
from triage.ops.http import Readiness
from triage.pipeline import DeadLetterBusy, Outcome, Pipeline
from triage.receivers import pagerduty
from triage.receivers.outbox import Outbox
from triage.receivers.registry import Receivers
from triage.routing import RoutingTree, Vocabulary, load_routing
from triage.routing.reload import RoutingReloader
from triage.settings import Settings
from triage.store import BatchWriter, Store, StoreUnavailable
from triage.warehouse.lane import WarehouseLane

log = logging.getLogger(__name__)

TRANSIENT = (StoreUnavailable, BrokerUnavailable, DeadLetterBusy, RegistryUnavailable)
RETRY_CAUSES = {
    StoreUnavailable: "store",
    BrokerUnavailable: "broker",
    DeadLetterBusy: "dead_letter",
    RegistryUnavailable: "schema_registry",
}
MAX_ATTEMPTS = 3  # attempts at a record that fails for a reason other than a transient outage


@dataclass
class Stats:
    consumed: int = 0
    outcomes: dict[str, int] = field(
        default_factory=lambda: {"processed": 0, "duplicate": 0, "dead_lettered": 0, "skipped": 0}
    )

    @property
    def handled(self) -> int:
        return sum(self.outcomes.values())


def worker_id() -> str:
    """Names this process in delivery claims: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def dead_here(claimer: str, me: str) -> bool:
    """A claimer that was a process on this host which is gone (killed, or this container's earlier
    life under the same pid): its work in doubt need not wait for its leases to run out."""
    parts = claimer.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit() or claimer == me:
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True  # our pid with another suffix: an earlier process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _partitions(partitions: set[TopicPartition]) -> str:
    return ", ".join(sorted(kafka.position(tp.topic, tp.partition) for tp in partitions)) or "none"


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.worker.release(revoked)
        if revoked:  # the client calls this with nothing before the first assignment too
            log.info("partitions revoked: %s", _partitions(revoked))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.worker.resume(assigned)
        log.info("partitions assigned: %s", _partitions(assigned))


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        classifier: Classifier,
        routes: RoutingTree,
        producer: KafkaProducer,
        consumer: KafkaConsumer,
        decoder: Decoder | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.producer = producer
        self.consumer = consumer
        self.writer = BatchWriter(store)
        claimer = worker_id()
        self.pipeline = Pipeline(settings, store, classifier, routes, producer, self.writer, claimer, decoder)
        self.receivers = Receivers(settings, producer, store)
        lease = timedelta(seconds=settings.worker.delivery_lease_s)
        gate = Gate(store, routes.config.inhibit_rules)
        self.outbox = Outbox(store, self.receivers.senders(routes), claimer, lease, gate=gate)
        self.escalator = Escalator(store, self.outbox.wake)
        self.warehouse = WarehouseLane.from_settings(settings, store)  # None: no periodic sync
        acks.on_first_take(store, self._acknowledge_pages)
        resolves.on_case_solved(store, self._resolve_pages)
        self.feedback = FeedbackLoop.from_settings(settings, store, self.pipeline.route, self.outbox.wake)
        self.routing = RoutingReloader(settings.routing_path(), routes, self._use_routes)
        self.health = HealthWatch(
            BrokerWatch(settings.kafka.bootstrap_servers), OutboxWatch(store, lambda: self.outbox.senders)
        )
        self.tracker = OffsetTracker()
        self.stats = Stats()
        # A wide window: the client hands out one partition's records at a time, and a window of only
        # a few conversations would leave threads idle behind their order (see docs/design.md, Concurrency).
        self.max_in_flight = settings.worker.max_in_flight or 16 * settings.worker.concurrency
        self.executor: KeyedExecutor | None = None
        self._stopping = threading.Event()
        self._resume_at: dict[TopicPartition, int | None] = {}  # revoked partitions: where to go on
        self._last_turn = time.monotonic()  # the loop's heartbeat, for /healthz
        self._lag_at = 0.0
        self._commits_failing = False
        self._fetch_warned = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Worker:
        """Check every dependency once, failing with one clear line (StoreUnavailable, RoutingError, ...).
        The LLM and the broker come before the model, whose loading takes seconds: a wrong address is
        said within TRIAGE_KAFKA__BOOTSTRAP_TIMEOUT_MS of the start."""
        routes = load_routing(settings.routing_path(), Vocabulary.from_settings(settings))
        decoder = Decoder.from_settings(settings)  # a bad mapping file is said before anything starts
        store = Store(settings.database_url)
        check_backend(settings)
        store.upgrade()
        kafka.announce(settings.kafka)
        if settings.kafka.create_topics:
            k = settings.kafka
            kafka.ensure_topics(k, [k.input_topic, k.results_topic, k.dlq_topic])
        producer = kafka.make_producer(settings.kafka)
        consumer = None
        try:
            classifier = make_classifier(settings, store)
            consumer = kafka.make_consumer(settings.kafka)
            worker = cls(settings, store, classifier, routes, producer, consumer, decoder)
            worker.receivers.check()
        except Exception:
            if consumer is not None:
                consumer.close(autocommit=False)
            producer.close(timeout=5)
            raise
        # after the checks: errors stay one line
        log.info(start_line(settings, store, routes, classifier) + worker.feedback.describe())
        for name, reason in worker.receivers.idle(routes):
            log.warning("receiver %s will skip every delivery: %s", name, reason)
        return worker

    def _acknowledge_pages(self, target: acks.Target) -> None:
        """A case or incident was taken: acknowledge the PagerDuty alerts it raised (once each)."""
        message_id = target.message_id or acks.first_case(self.store, target.incident_id)
        if message_id and pagerduty.follow_up(self.store, self.pipeline.routes, message_id, "acknowledge"):
            self.outbox.wake()

    def _resolve_pages(self, message_id: str) -> None:
        """A case's ticket was solved: resolve the PagerDuty alert it raised (once)."""
        if pagerduty.follow_up(self.store, self.pipeline.routes, message_id, "resolve"):
            self.outbox.wake()

    def _use_routes(self, routes: RoutingTree) -> None:
        self.pipeline.routes = routes
        if hasattr(self.pipeline.classifier, "use_routes"):  # the cascade asks on the categories routed
            self.pipeline.classifier.use_routes(routes)
        self.outbox.use(self.receivers.senders(routes))
        self.outbox.gate.rules = routes.config.inhibit_rules

    def stop(self) -> None:
        """Stop fetching; finish what is in flight within the grace period, commit it, flush the outbox."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self, until: Callable[[Stats], bool] | None = None) -> Stats:
        """Run until stop() is called, or until `until(stats)` holds, nothing is in flight and every
        due delivery is made."""
        self.consumer.subscribe([self.settings.kafka.input_topic], listener=_CommitOnRevoke(self))
        self._end_leases_of_the_dead()
        self.feedback.start()
        self.outbox.start()
        self.escalator.start()
        if self.warehouse:
            self.warehouse.start()
        self.writer.start()
        self.health.start()
        self.executor = KeyedExecutor(self._handle, self.settings.worker.concurrency)
        try:
            while not self._stopping.is_set():
                self._last_turn = time.monotonic()
                self.routing.check()
                self._fetch(self.executor)
                self._settle(self.executor.completed())
                self.commit()
                self._record_lag()
                if until and until(self.stats) and self.executor.in_flight == 0 and self._outbox_idle():
                    break
        finally:
            self._shut_down(self.executor)
        return self.stats

    def _end_leases_of_the_dead(self) -> None:
        """After a crash and restart, what the dead process had claimed is taken over at once."""
        dead = {claimer for claimer in self.store.claimers() if dead_here(claimer, self.outbox.claimer)}
        if dead:
            self.store.end_leases(dead)
            log.info("took over the claims of %d stopped worker process(es) on this host", len(dead))

    def _fetch(self, executor: KeyedExecutor) -> None:
        """Poll (unless the in-flight buffer is full) and hand every record to the pool."""
        self._apply_backpressure(executor)
        room = max(1, self.max_in_flight - executor.in_flight)  # paused when there is none: polls nothing
        metrics.IN_FLIGHT.set(executor.in_flight)
        metrics.FETCH_PAUSED.set(1 if self.consumer.paused() else 0)
        timeout_ms = self.settings.kafka.poll_timeout_ms
        if executor.in_flight:  # come back soon to book what finishes
            timeout_ms = min(timeout_ms, 50)
        try:
            fetched = self.consumer.poll(timeout_ms=timeout_ms, max_records=room)
        except KafkaError as error:  # e.g. the broker went away while the group was being joined
            self._poll_failed(error)
            return
        if fetched and self._fetch_warned:
            log.info("fetching works again")
            self._fetch_warned = False
        for tp, records in fetched.items():
            for record in records:
                self.stats.consumed += 1
                metrics.MESSAGES_CONSUMED.inc()
                self.tracker.started(tp, record.offset)
                executor.submit(record)

    def _poll_failed(self, error: KafkaError) -> None:
        """Wait a moment and try again; say so once, unless the broker watch says why (unreachable)."""
        if not self._fetch_warned and not self.health.broker.check():
            log.warning("fetching failed, retrying: %s: %s", type(error).__name__, error)
            self._fetch_warned = True
        self._stopping.wait(1.0)

    def _apply_backpressure(self, executor: KeyedExecutor) -> None:
        """Pause fetching when the in-flight buffer is full; resume at half."""
        if executor.in_flight >= self.max_in_flight:
            self.consumer.pause(*self.consumer.assignment())
        elif self.consumer.paused() and executor.in_flight <= self.max_in_flight // 2:
            self.consumer.resume(*self.consumer.paused())

    def alive(self) -> bool:
        """The loop has turned recently (it can wait up to the grace period while shutting down)."""
        return time.monotonic() - self._last_turn < 60 + self.settings.worker.shutdown_grace_s

    def readiness(self) -> Readiness:
        def store() -> str | None:
            try:
                self.store.ping()
            except StoreUnavailable as error:
                return str(error)
            return None

        return Readiness(
            {
                "broker": lambda: self.health.broker.problem,
                "store": store,
                "routing": lambda: None if self.pipeline.routes is not None else "no routing tree loaded",
            },
            notes=lambda: self.health.outbox.degraded() + classifier_notes(self.pipeline.classifier),
        )

    def _record_lag(self) -> None:
        """Consumer lag per partition from what the client already knows (no extra requests)."""
        if time.monotonic() - self._lag_at < 5:
            return
        self._lag_at = time.monotonic()
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                position = self.tracker.first_unfinished(tp)
                lag = highwater - position if position is not None else highwater
                metrics.CONSUMER_LAG.labels(kafka.position(tp.topic, tp.partition)).set(max(0, lag))

    def _settle(self, done: Iterable[Done]) -> None:
        """Book finished records; a record given up at shutdown (None) stays unfinished: never committed."""
        stored = False
        for item in done:
            if item.result is None:
                continue
            self.tracker.finished(item.tp, item.offset)
            self.stats.outcomes[item.result] += 1
            stored = stored or item.result == "processed"
        if stored:
            self.outbox.wake()

    def _handle(self, record: ConsumerRecord) -> Outcome | None:
        """On a pool thread: the pipeline, retried through outages (store, broker) until it succeeds
        or the worker stops (None: not done, the record is fetched again after a restart)."""
        backoff_s = 0.0
        wset = self.settings.worker
        while not self._stopping.is_set():
            try:
                return self._attempt(record)
            except TRANSIENT as error:
                backoff_s = min(wset.retry_backoff_max_s, max(wset.retry_backoff_s, backoff_s * 2))
                cause = next(name for kind, name in RETRY_CAUSES.items() if isinstance(error, kind))
                metrics.PROCESSING_RETRIES.labels(cause).inc()
                log.warning("%s; retrying in %.1fs", error, backoff_s)
                self._stopping.wait(backoff_s)
        return None

    def _attempt(self, record: ConsumerRecord) -> Outcome:
        """The pipeline, with a bounded number of attempts for failures that are not outages."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self.pipeline.handle(record)
            except TRANSIENT:
                raise
            except Exception as error:
                where = kafka.position(record.topic, record.partition, record.offset)
                log.exception("processing %s failed (attempt %d)", where, attempt)
                last = error
        self.pipeline.dead_letter(record, "processing_failed", f"{type(last).__name__}: {last}")
        return "dead_lettered"

    def release(self, partitions: set[TopicPartition]) -> None:
        """Partitions are taken away (rebalance): drop their unstarted records and commit what is done.

        This runs on the Kafka client's IO thread, where nothing may block, so the commit is sent
        asynchronously and running records are not waited for: the new owner fetches them again, and
        the store gives a message that both finish one effect (the second save finds it stored; the
        conversation's next message starts only after that)."""
        if self.executor is not None:
            self.stats.consumed -= len(self.executor.drop_waiting(partitions))
        offsets = self.tracker.committable(partitions)
        if offsets:
            kafka.commit(self.consumer, offsets, wait=False)
        self._resume_at = {tp: self.tracker.first_unfinished(tp) for tp in partitions} | self._resume_at
        self.tracker.forget(partitions)

    def resume(self, assigned: set[TopicPartition]) -> None:
        """Partitions (re)assigned. One that was ours before keeps the client's fetch position, which is
        past the records dropped at the revoke: seek back to the first unfinished one."""
        for tp in assigned:
            if (offset := self._resume_at.get(tp)) is not None:
                self.consumer.seek(tp, offset)
        self._resume_at = {}

    def _wait_running(self, executor: KeyedExecutor, deadline: float) -> None:
        while executor.running() and time.monotonic() < deadline:
            done = executor.wait_done(min(0.1, max(0.0, deadline - time.monotonic())))
            self._settle([done, *executor.completed()] if done else [])
        self._settle(executor.completed())

    def _shut_down(self, executor: KeyedExecutor) -> None:
        deadline = time.monotonic() + self.settings.worker.shutdown_grace_s
        try:
            self.stats.consumed -= len(executor.drop_waiting(self.consumer.assignment()))
            self._wait_running(executor, deadline)
            if executor.running():
                log.warning(
                    "%d messages were still in flight at the end of the grace period", executor.running()
                )
            self.commit()
        finally:
            self.feedback.stop()
            self.escalator.stop()
            if self.warehouse:
                self.warehouse.stop()
            self.health.stop()
            self.writer.stop()
            self.consumer.close(autocommit=False)
            self.outbox.flush(deadline)
            self.outbox.stop()
            executor.stop()
            self.producer.close(timeout=10)
            self.store.close()

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
            if not self._commits_failing:  # once, not on every turn of the loop while the broker is away
                log.warning(
                    "offset commit failed, retrying (records not committed are redelivered after a "
                    "restart, with no second effect): %s",
                    error,
                )
            self._commits_failing = True
            return
        if self._commits_failing:
            log.info("offset commits succeed again")
        self._commits_failing = False
        self.tracker.committed(offsets)


def start_line(settings: Settings, store: Store, routes: RoutingTree, classifier: Classifier) -> str:
    """What this worker uses, in one line: where things are when something looks wrong."""
    routing = str(settings.routing_path())
    if settings.routing_path() != settings.routing_file:
        routing += f" (the built-in example: {settings.routing_file} does not exist here)"
    model = classifier.name
    if settings.classifier.backend == "llm":
        model += f" at {settings.llm.base_url}, fallback {settings.classifier.fallback}"
    elif settings.classifier.backend == "cascade":
        model += f" at {settings.llm.base_url}, asking below {settings.cascade.ask_below}"
    elif settings.classifier.model_dir:
        model += f" with heads from {settings.classifier.model_dir}"
    k = settings.kafka
    receivers = ", ".join(receiver.describe() for receiver in routes.receivers.values())
    return (
        f"starting: store {store.safe_url}; routing {routing}; classifier {model}; "
        f"topics {k.input_topic} -> {k.results_topic}, dead letters {k.dlq_topic}; receivers {receivers}"
    )
