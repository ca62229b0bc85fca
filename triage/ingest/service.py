"""The running `triage ingest`: the store, one producer shared by every request, and the HTTP server
with `POST /messages` beside `/healthz`, `/readyz` and `/metrics` on TRIAGE_INGEST__PORT."""

from __future__ import annotations

import logging
import threading

from kafka import KafkaProducer
from kafka.errors import KafkaError

from triage import kafka
from triage.ingest.auth import Authenticator
from triage.ingest.dedup import Deduplicator
from triage.ingest.server import IngestApp
from triage.ops.http import OpsServer, Readiness, broker_check
from triage.settings import IngestSettings, Settings
from triage.store import Store, StoreUnavailable
from triage.store.ingested import IngestedStore

log = logging.getLogger(__name__)
PURGE_EVERY_S = 600.0
LINGER_MS = 5  # records of concurrent requests go out in one produce request


class IngestConfigError(Exception):
    """Settings with which no request could ever be accepted."""


def make_producer(settings: Settings) -> KafkaProducer:
    """acks=all, and every wait bounded by the ack timeout: a record a request gave up on (503) has
    expired in the client too, and is not sent once the broker is back, beside the helpdesk's retry.

    Not idempotent: when a batch that was being retried expires (the broker away), kafka-python 3.0's
    idempotent producer drops its producer id, and until it gets a new one it neither sends nor
    expires anything; in our outage drills it never got one after the broker came back, and every
    request timed out. A record the client sends twice after a lost acknowledgement is one more
    duplicate the worker ignores (it stores each message id once)."""
    timeout_ms = int(settings.ingest.ack_timeout_s * 1000)
    with kafka.reaching(settings.kafka):
        return KafkaProducer(
            **kafka.client_config(settings.kafka),
            acks="all",
            enable_idempotence=False,
            linger_ms=LINGER_MS,
            request_timeout_ms=timeout_ms - LINGER_MS,
            delivery_timeout_ms=timeout_ms,
            max_block_ms=timeout_ms,
        )


def check(ingest: IngestSettings) -> None:
    if not ingest.token and not ingest.zendesk_signing_secret:
        raise IngestConfigError(
            "set TRIAGE_INGEST__TOKEN (bearer token) or TRIAGE_INGEST__ZENDESK_SIGNING_SECRET: without "
            "either, every webhook would be refused"
        )


class IngestService:
    def __init__(
        self, settings: Settings, store: Store, producer: KafkaProducer, host: str = "0.0.0.0"
    ) -> None:
        ingest = settings.ingest
        self.store = store
        self.producer = producer
        lease_s = ingest.ack_timeout_s + 10  # longer than any request waits for its acknowledgement
        self.ingested = IngestedStore(store, ingest.dedup_window_s, lease_s)
        self.dedup = Deduplicator(self.ingested)
        auth = Authenticator(ingest.token, ingest.zendesk_signing_secret, ingest.signature_max_age_s)
        app = IngestApp(settings, producer, self.dedup, auth)
        readiness = Readiness({"broker": broker_check(settings.kafka.bootstrap_servers), "store": self._ping})
        self._stop = threading.Event()
        self.server = OpsServer(
            ingest.port,
            lambda: not self._stop.is_set(),
            readiness,
            host=host,
            routes={"/messages": app},
            setting="TRIAGE_INGEST__PORT",
        )
        self.port = self.server.port
        self._purger = threading.Thread(target=self._purge, name="ingest-purge", daemon=True)

    @classmethod
    def from_settings(cls, settings: Settings, host: str = "0.0.0.0") -> IngestService:
        """Check every dependency once, failing with one clear line."""
        check(settings.ingest)
        store = Store(settings.database_url)
        store.upgrade()
        kafka.announce(settings.kafka)
        if settings.kafka.create_topics:
            kafka.ensure_topics(settings.kafka, [settings.kafka.input_topic])
        producer = make_producer(settings)
        try:
            return cls(settings, store, producer, host)
        except Exception:
            producer.close(timeout=5)
            raise

    def start(self) -> IngestService:
        self.dedup.start()
        self.server.start()
        self._purger.start()
        log.info("taking webhooks on POST /messages, port %d", self.port)
        return self

    def stop(self) -> None:
        """Stop taking requests; records already sent are flushed to the broker before the producer closes."""
        self._stop.set()
        self.server.stop()
        try:
            self.producer.close(timeout=10)
        except KafkaError as error:  # the broker is away: what was not acknowledged was answered 503
            log.warning("records not flushed at stop: %s", error)
        self.dedup.stop()
        self.store.close()

    def _ping(self) -> str | None:
        try:
            self.store.ping()
        except StoreUnavailable as error:
            return str(error)
        return None

    def _purge(self) -> None:
        while not self._stop.wait(PURGE_EVERY_S):
            try:
                self.ingested.purge()
            except StoreUnavailable as error:
                log.warning("could not forget old message ids: %s", error)
