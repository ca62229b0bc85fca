"""`POST /messages`: one message in the input contract, from a helpdesk's webhook, onto the input topic.

The answer is 2xx only once the broker acknowledged the record (acks=all), so a helpdesk that gets
anything else sends the webhook again, and nothing is lost while it keeps retrying. The same message
id sent twice within the dedup window produces one record (see triage/store/ingested.py).

Answers, each a one-line JSON object:
- 202 `accepted` (with the record's partition and offset), 200 `duplicate`;
- 400 the message is not valid, naming the field, as the worker would dead-letter it;
- 401 neither a valid Zendesk signature nor the bearer token; 411 no Content-Length;
- 413 the request, or the message's body, is larger than allowed;
- 503 with Retry-After: the broker did not acknowledge in time, the store is unreachable, or the same
  id is being produced by another request right now.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from triage.ingest.auth import Authenticator
from triage.ingest.dedup import Deduplicator
from triage.message import InvalidMessage, SupportMessage, parse_message
from triage.ops import metrics
from triage.settings import Settings
from triage.store import StoreUnavailable

log = logging.getLogger(__name__)
Answer = tuple[int, dict[str, Any], str]  # status, JSON body, outcome label for the metric
REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    503: "Service Unavailable",
}


class IngestApp:
    """The WSGI app of `POST /messages`; the ops server routes that path here."""

    def __init__(
        self, settings: Settings, producer: KafkaProducer, dedup: Deduplicator, auth: Authenticator
    ) -> None:
        self.settings = settings
        self.topic = settings.kafka.input_topic
        self.limits = settings.ingest
        self.producer = producer
        self.dedup = dedup
        self.auth = auth

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        status, document, outcome = self._answer(environ)
        headers = [("Content-Type", "application/json")]
        if status == 503:
            headers.append(("Retry-After", str(self.limits.retry_after_s)))
        elif status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="triage"'))
        elif status == 405:
            headers.append(("Allow", "POST"))
        start_response(f"{status} {REASONS[status]}", headers)
        metrics.INGEST_REQUESTS.labels(outcome).inc()
        metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
        return [json.dumps(document).encode() + b"\n"]

    def _answer(self, environ: dict[str, Any]) -> Answer:
        if environ["REQUEST_METHOD"] != "POST":
            return 405, {"error": "only POST is allowed on /messages"}, "method"
        length = environ.get("CONTENT_LENGTH") or ""
        if not length.isdigit():
            return 411, {"error": "a Content-Length header is required"}, "invalid"
        if int(length) > self.limits.max_request_bytes:
            limit = self.limits.max_request_bytes
            return 413, {"error": f"the request is {length} bytes, the limit is {limit}"}, "too_large"
        body = environ["wsgi.input"].read(int(length))
        if refusal := self.auth.refusal(environ, body):
            log.warning("ingest refused a request from %s: %s", environ.get("REMOTE_ADDR"), refusal)
            return 401, {"error": "unauthorized"}, "unauthorized"
        try:
            message = parse_message(body, self.settings.worker.max_body_bytes)
        except InvalidMessage as error:
            status = 413 if error.code == "body_too_large" else 400
            return status, {"error": str(error)}, "too_large" if status == 413 else "invalid"
        return self._produce(message, body)

    def _produce(self, message: SupportMessage, body: bytes) -> Answer:
        ids = {"message_id": message.id}
        try:
            claim = self.dedup.claim(message.id)
        except StoreUnavailable as error:
            log.warning("ingest cannot reach the store, answering 503: %s", error, extra=ids)
            return 503, {"error": "the store is unavailable; try again"}, "unavailable"
        if claim == "duplicate":
            return 200, {"status": "duplicate", **ids}, "duplicate"
        if claim == "busy":
            return 503, {"error": "this message id is being produced right now; try again"}, "busy"
        key = message.conversation_key.encode()
        try:
            future = self.producer.send(self.topic, key=key, value=body)
            record = future.get(timeout=self.limits.ack_timeout_s + 1)
        except KafkaError as error:
            log.warning("the broker did not acknowledge, answering 503: %s", error, extra=ids)
            self.dedup.released(message.id)
            return 503, {"error": "the broker did not acknowledge the message; try again"}, "unavailable"
        self.dedup.produced(message.id)  # written with the next batch; the answer need not wait
        return (
            202,
            {"status": "accepted", **ids, "partition": record.partition, "offset": record.offset},
            ("accepted"),
        )
