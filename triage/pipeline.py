"""One record's way through the worker: parse → dedupe → classify → route → store with its outbox.

`handle()` either stores the message (with its triage result and deliveries, in one transaction
that the BatchWriter shares with other messages), publishes it to the dead-letter topic with the
reason, or recognises it as already stored. Transient failures (StoreUnavailable,
BrokerUnavailable) propagate: the caller retries, nothing is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from triage.classify import Classifier
from triage.classify.embedded import Encoder, message_text
from triage.classify.meaning import Meaning
from triage.classify.redact import redact
from triage.classify.survey import classify_case
from triage.customers import identities
from triage.dlq import already_sent
from triage.history import Contact, customer_history, history_fields
from triage.input.decoder import Decoder
from triage.input.presets import Skipped
from triage.kafka import position, publish_dead_letter
from triage.message import InvalidMessage, SupportMessage, Triage, alert_priority
from triage.ops import metrics
from triage.routing import RESULTS_RECEIVER, RoutingTree, case_fields
from triage.routing.fields import without_personal_data
from triage.routing.tree import Match
from triage.settings import Settings
from triage.store import BatchWriter, RecordPosition, Store
from triage.store.tables import DeliveryRow, MessageRow, TriageRow

log = logging.getLogger(__name__)


class DeadLetterBusy(Exception):
    """Another worker claimed this record's dead letter and has not finished: try again later."""


Outcome = Literal["processed", "duplicate", "dead_lettered", "skipped"]
EXCERPT_CHARS = 500


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        classifier: Classifier,
        routes: RoutingTree,
        producer: KafkaProducer,
        writer: BatchWriter,
        claimer: str,
        decoder: Decoder | None = None,
    ) -> None:
        self.settings = settings
        self.decoder = decoder or Decoder.from_settings(settings)
        self.claimer = claimer  # this worker, in dead-letter claims
        self._meaning: Meaning | None = None  # for `similar` grouping, made when first needed
        self._meaning_lock = threading.Lock()
        self.store = store
        self.writer = writer
        self.classifier = classifier
        self.routes = routes
        self.producer = producer

    def handle(self, record: ConsumerRecord) -> Outcome:
        try:
            decoded = self.decoder.decode(record.value, record.headers)
        except InvalidMessage as error:
            self.dead_letter(record, error.code, error.detail)
            return "dead_lettered"
        if isinstance(decoded, Skipped):
            metrics.RECORDS_SKIPPED.labels(decoded.reason).inc()
            log.info(
                "skipped %s: %s", position(record.topic, record.partition, record.offset), decoded.reason
            )
            return "skipped"
        message = decoded.message
        if self.store.is_processed(message.id):
            return self._duplicate(message)
        started = time.perf_counter()
        triage = classify_case(self.classifier, message, self.routes.vocabulary.categories)
        metrics.CLASSIFY_SECONDS.labels(triage.model.split(":")[0]).observe(time.perf_counter() - started)
        if triage.prompt_tokens or triage.completion_tokens:
            metrics.LLM_TOKENS.labels("prompt").inc(triage.prompt_tokens)
            metrics.LLM_TOKENS.labels("completion").inc(triage.completion_tokens)
            metrics.LLM_COST.inc(triage.cost_usd)
        found = identities(message.customer, hashed=not self.settings.store_original_text)
        history = self.customer_history(message, triage, found)
        receivers, deliveries = self.route(message, triage, arrived_at=arrival(record), history=history)
        deliveries.append(
            DeliveryRow(
                message_id=message.id,
                conversation_id=message.conversation_key,
                receiver=RESULTS_RECEIVER,
                payload=case_record(message, triage, receivers, history),
            )
        )
        kept = message if self.settings.store_original_text else redacted(message)
        stored = self.writer.save_triaged(
            message_row(kept, record, decoded.raw if self.settings.store_original_text else None),
            triage_row(message, triage, receivers, history),
            deliveries,
            found,
        )
        if not stored:
            return self._duplicate(message)
        metrics.MESSAGES_PROCESSED.inc()
        log.info(
            "triaged",
            extra={
                "message_id": message.id,
                "conversation_id": message.conversation_key,
                "urgency": triage.urgency,
                "receivers": receivers,
            },
        )
        return "processed"

    def customer_history(
        self, message: SupportMessage, triage: Triage, found: list[str]
    ) -> dict[str, Any] | None:
        """The customer's history for this case (triage/history.py), from one read of the store; None
        when it is switched off (TRIAGE_HISTORY__ENABLED=false) or the message names no customer."""
        if not self.settings.history.enabled or not found:
            return None
        at = as_utc(message.created_at) if message.created_at else datetime.now(UTC)
        now = Contact(message.id, at, message.channel, triage.urgency, triage.sentiment, triage.category)
        return customer_history(now, self.store.customer_contacts(found, at))

    def route(
        self,
        message: SupportMessage,
        triage: Triage,
        extra: dict[str, Any] | None = None,
        arrived_at: datetime | None = None,
        history: dict[str, Any] | None = None,
    ) -> tuple[list[str], list[DeliveryRow]]:
        """The receivers the routing tree chooses for a judged message, and a delivery for each (the
        results topic's not included). `extra` goes into every delivery's payload; `arrived_at`, when
        the broker got the message, is when a new group's group_wait starts (default: when stored);
        `history`, the customer's (matched as `customer.contacts_24h` and the like)."""
        fields = {**case_fields(message, triage), **history_fields(history)}
        routes = self.routes
        matches = routes.matches(fields)
        receivers = [match.receiver for match in matches]
        alert = {
            **case_record(message, triage, receivers, history),
            **alert_details(message),
            **(extra or {}),
        }
        now = datetime.now(UTC)
        deliveries = []
        grouped_on: dict[str, Any] | None = None  # the fields group keys are made of, once needed
        for match in matches:
            delivery = DeliveryRow(
                message_id=message.id,
                conversation_id=message.conversation_key,
                receiver=match.receiver,
                payload=alert_payload(alert, match, personal=self.settings.store_original_text),
                not_before=match.quiet_hours.deferred_until(now) if match.quiet_hours else None,
                priority=alert_priority(triage.urgency),
            )
            if match.escalate is not None:  # triage/oncall/escalations.py
                delivery.escalate_to = match.escalate.to
                delivery.escalate_after_s = match.escalate.after.total_seconds()
            mode = group_mode(routes, match.receiver)
            if match.group is not None and mode is not None:
                if grouped_on is None:
                    grouped_on = (
                        fields if self.settings.store_original_text else pseudonymised(message, triage)
                    )
                delivery.group_key = match.group.key(match.path, grouped_on)
                delivery.payload["group"] = {
                    **match.group.settings(),
                    "mode": mode,
                    "key": match.group.describe(grouped_on),
                    "vector": self._vector(message) if match.group.similar else None,
                    "arrived_at": arrived_at.isoformat() if arrived_at else None,
                }
            deliveries.append(delivery)
        return receivers, deliveries

    def _vector(self, message: SupportMessage) -> list[float]:
        """The message's meaning, for `group_by: [similar]`: from the embedded encoder whatever the
        classifier (the embedded classifier's own, when it is the one)."""
        with self._meaning_lock:
            if self._meaning is None:
                self._meaning = Meaning(find_encoder(self.classifier) or Encoder())
        return self._meaning.vector(message_text(message))

    def dead_letter(self, record: ConsumerRecord, code: str, detail: str) -> None:
        """Send the record to the dead-letter topic, once: the store's ledger remembers it by position,
        so a record read again (after a crash, or by a second worker) gets no second dead letter."""
        ledger_key = RecordPosition(record.topic, record.partition, record.offset)
        lease = timedelta(seconds=self.settings.worker.delivery_lease_s)
        claim = self.store.claim_dead_letter(ledger_key, code, detail, self.claimer, lease)
        where = position(record.topic, record.partition, record.offset)
        if claim == "sent":
            log.info("%s was dead-lettered before (%s): not sent again", where, code)
            return
        if claim == "busy":
            raise DeadLetterBusy(f"another worker is dead-lettering {where}")
        if claim == "resend" and already_sent(
            self.settings.kafka, record.topic, record.partition, record.offset
        ):
            # an earlier try was acknowledged by the broker but not marked before it stopped
            log.info("%s: an earlier dead letter did not finish; found on the dead-letter topic", where)
            self.store.dead_letter_sent(ledger_key)
            return
        publish_dead_letter(self.producer, self.settings.kafka.dlq_topic, record, code, detail)
        self.store.dead_letter_sent(ledger_key)
        metrics.MESSAGES_DEAD_LETTERED.labels(code).inc()
        log.warning("dead-lettered %s: %s: %s", where, code, detail)

    def _duplicate(self, message: SupportMessage) -> Outcome:
        metrics.MESSAGES_DUPLICATE.inc()
        log.info("duplicate message id, no effect", extra={"message_id": message.id})
        return "duplicate"


def arrival(record: ConsumerRecord) -> datetime:
    """When the broker got the record (its timestamp), never later than now: a case that waited in
    Kafka while no worker ran (a restart after a crash) has waited its group_wait already."""
    now = datetime.now(UTC)
    if record.timestamp is None or record.timestamp < 0:
        return now
    return min(now, datetime.fromtimestamp(record.timestamp / 1000, UTC))


def group_mode(routes: RoutingTree, receiver: str) -> str | None:
    """How a receiver groups: Slack posts one alert per incident; a helpdesk with link_problem links
    the tickets to a problem ticket; PagerDuty and webhooks send one event per incident; other
    receivers take every case as it comes."""
    kind = routes.receivers.get(receiver)
    if kind is None:
        return None
    if kind.slack is not None:
        return "alert"
    if kind.helpdesk is not None and kind.helpdesk.link_problem:
        return "link"
    if kind.pagerduty is not None or kind.webhook is not None:
        return "event"  # one event per incident, updated as cases join, resolved when it goes idle
    return None


def find_encoder(classifier: Classifier) -> Encoder | None:
    """The embedded encoder a classifier (or its fallback) already holds."""
    for candidate in (classifier, getattr(classifier, "fallback", None)):
        encoder = getattr(candidate, "encoder", None)
        if isinstance(encoder, Encoder):
            return encoder
    return None


def case_record(
    message: SupportMessage,
    triage: Triage,
    receivers: list[str],
    history: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The results-topic record, also the payload every receiver renders from."""
    return {
        "message_id": message.id,
        "conversation_id": message.conversation_key,
        **triage.model_dump(mode="json"),
        "summary": redact(triage.summary).text,  # a summary can quote the customer: it leaves the process
        "receivers": receivers,
        "channel": message.channel,
        "customer_id": message.customer.id,
        "customer_tier": message.customer.tier,
        "ticket_id": message.ticket.id if message.ticket else None,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "triaged_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "customer_history": history,
    }


def alert_details(message: SupportMessage) -> dict[str, Any]:
    """What a person needs besides the judgement: redacted, since alerts leave the process."""
    excerpt = redact(" ".join(message.body.split())).text
    return {
        "subject": redact(message.subject).text if message.subject else None,
        "excerpt": excerpt if len(excerpt) <= EXCERPT_CHARS else excerpt[: EXCERPT_CHARS - 1] + "…",
        "customer_name": redact(message.customer.name).text if message.customer.name else None,
        "ticket_url": message.ticket.url if message.ticket else None,
        "ticket_system": message.ticket.system if message.ticket else None,
        "source_url": source_url(message),
    }


def alert_payload(alert: dict[str, Any], match: Match, personal: bool = True) -> dict[str, Any]:
    """What a receiver renders: the case, its details, and the route that chose the receiver (its
    matchers say why; without `personal`, those on the customer's address or name do not say the
    value)."""
    return {
        **alert,
        "repeat_interval_s": _seconds(match.repeat_interval),
        "route": match.path,
        "route_matchers": [m if personal else without_personal_data(m) for m in match.matchers],
    }


def source_url(message: SupportMessage) -> str | None:
    """Where the message can be seen when it has no ticket (a review, a social post): metadata.url,
    if it is an http(s) URL."""
    url = message.metadata.get("url")
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def _seconds(interval: timedelta | None) -> float | None:
    return interval.total_seconds() if interval is not None else None


def redacted(message: SupportMessage) -> SupportMessage:
    """The message with PII masked in every free-text field (body, subject, the customer's name,
    metadata) and the customer's e-mail and phone dropped. Identifiers and the ticket's link stay as
    given: they are keys and pointers (message, conversation, customer and ticket ids)."""
    customer = message.customer
    return message.model_copy(
        update={
            "body": redact(message.body).text,
            "subject": redact(message.subject).text if message.subject else None,
            "customer": customer.model_copy(
                update={
                    "email": None,
                    "phone": None,
                    "name": redact(customer.name).text if customer.name else None,
                }
            ),
            "metadata": redact_strings(message.metadata),
        }
    )


def pseudonymised(message: SupportMessage, triage: Triage) -> dict[str, Any]:
    """The case's fields, each value that redaction would change replaced by a digest of it: cases
    still group by `customer.name` or `subject`, and the store (which keeps group keys) never sees the
    name or the subject (TRIAGE_STORE_ORIGINAL_TEXT=false)."""
    fields = case_fields(message, triage)
    masked = case_fields(redacted(message), triage)
    return {name: value if masked.get(name) == value else _digest(value) for name, value in fields.items()}


def _digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()[:16]


def redact_strings(value: Any) -> Any:
    """Every string in a JSON-like value, PII masked."""
    if isinstance(value, str):
        return redact(value).text
    if isinstance(value, dict):
        return {key: redact_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_strings(item) for item in value]
    return value


def message_row(message: SupportMessage, record: ConsumerRecord, raw: str | None) -> MessageRow:
    """`raw`: the value received as text (decoded to JSON when it came as Avro or Protobuf); None stores
    the (redacted) parsed message instead."""
    return MessageRow(
        id=message.id,
        conversation_id=message.conversation_key,
        channel=message.channel,
        customer_id=message.customer.id,
        customer_tier=message.customer.tier,
        ticket_id=str(message.ticket.id) if message.ticket and message.ticket.id is not None else None,
        created_at=as_utc(message.created_at) if message.created_at else None,
        raw=raw if raw is not None else message.model_dump_json(),
        parsed=message.model_dump(mode="json"),
        kafka_topic=record.topic,
        kafka_partition=record.partition,
        kafka_offset=record.offset,
        survey_type=message.survey.type if message.survey else None,
        survey_score=message.survey.score if message.survey else None,
    )


def as_utc(moment: datetime) -> datetime:
    """SQLite drops a timestamp's offset: store UTC (a time without an offset is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def triage_row(
    message: SupportMessage, triage: Triage, receivers: list[str], history: dict[str, Any] | None = None
) -> TriageRow:
    """The stored result; its summary is redacted, as everywhere it goes (it may quote the customer)."""
    fields = triage.model_dump()
    fields["summary"] = redact(triage.summary).text
    return TriageRow(message_id=message.id, receivers=receivers, customer_history=history, **fields)
