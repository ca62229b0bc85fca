"""The worker on the real broker with a schema registry stand-in: a topic mixing plain JSON, Avro (two
schema versions), Protobuf and JSON Schema values is triaged whole; a registry outage mid-stream loses
nothing and dead-letters nothing; bad bytes are dead-lettered once, as received, with their reason;
results are written in Avro under `<topic>-value`."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import UTC, datetime

import fastavro

from tests.conftest import message, produce, read_topic
from tests.fakes.schema_registry import FakeSchemaRegistry
from tests.input.encoding import (
    TICKET_AVRO,
    TICKET_AVRO_V2,
    TICKET_JSON_SCHEMA,
    TICKET_PROTO,
    avro_value,
    framed,
    json_schema_value,
    proto_value,
)
from triage.settings import InputSettings, SchemaRegistrySettings, Settings
from triage.store import Store
from triage.worker import Worker

OPENED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
MAPPING = """\
id: to_string(ticket_id || id)
body: text || body
customer.email: requester_email
customer.tier: tier
"""


def test_a_mixed_topic_through_a_registry_outage(settings: Settings, tmp_path):
    with FakeSchemaRegistry() as registry:
        v1 = registry.register("support-value", TICKET_AVRO)
        v2 = registry.register("support-value", TICKET_AVRO_V2)
        proto = registry.register("support-proto-value", TICKET_PROTO, "PROTOBUF")
        schema = registry.register("support-json-value", json.dumps(TICKET_JSON_SCHEMA), "JSON")
        good = [
            message("plain-1", "Where is my invoice?"),
            avro_value(v1, TICKET_AVRO, {"ticket_id": 101, "text": "Checkout is down", "opened_at": OPENED}),
            avro_value(
                v2,
                TICKET_AVRO_V2,
                {
                    "ticket_id": 102,
                    "text": "Refund",
                    "requester_email": None,
                    "opened_at": OPENED,
                    "tier": "pro",
                },
            ),
            proto_value(proto, ticket_id=103, text="Parcel lost", requester_email="p@q.io"),
            json_schema_value(schema, {"id": "104", "body": "Password reset mail never arrives"}),
        ]
        bad = {
            "undecodable": framed(v1, b"\x02\xff"),
            "schema_unknown": framed(4242, b"\x00"),
        }
        mapping = tmp_path / "input.yaml"
        mapping.write_text(MAPPING)
        settings.input = InputSettings(mapping=mapping)
        settings.schema_registry = SchemaRegistrySettings(url=registry.address)
        settings.kafka.results_format = "avro"
        produce(settings.kafka, [*good, *bad.values()], key=b"one-partition")

        worker = Worker.from_settings(settings)  # registers the results schema: the registry is up
        registry.down = True
        done = threading.Thread(target=worker.run, kwargs={"until": lambda s: s.handled >= 7}, daemon=True)
        done.start()
        deadline = time.monotonic() + 60
        while sum(1 for _, path in registry.requests if path.startswith("/schemas/ids/")) < 3:
            assert time.monotonic() < deadline, "the worker never asked the registry"
            time.sleep(0.1)
        assert worker.stats.outcomes["dead_lettered"] == 0  # an outage is not a reason to dead-letter
        registry.down = False
        done.join(timeout=120)
        assert not done.is_alive()

        assert worker.stats.outcomes == {"processed": 5, "duplicate": 0, "dead_lettered": 2, "skipped": 0}
        dead = read_topic(settings.kafka.bootstrap_servers, settings.kafka.dlq_topic, 2)
        assert {dict(r.headers)["triage.error.code"].decode(): r.value for r in dead} == bad  # as received

        stored = Store(settings.database_url).results(["plain-1", "101", "102", "103", "104"])
        assert len(stored) == 5

        results = read_topic(settings.kafka.bootstrap_servers, settings.kafka.results_topic, 5)
        subject = f"{settings.kafka.results_topic}-value"
        assert subject in registry.subjects
        schema_id = registry.subjects[subject][-1]
        writer = fastavro.parse_schema(json.loads(registry.schemas[schema_id]["schema"]))
        decoded = []
        for record in results:
            assert record.value[0] == 0 and int.from_bytes(record.value[1:5], "big") == schema_id
            decoded.append(fastavro.schemaless_reader(io.BytesIO(record.value[5:]), writer, None))
        assert sorted(r["message_id"] for r in decoded) == ["101", "102", "103", "104", "plain-1"]
        by_id = {r["message_id"]: r for r in decoded}
        assert by_id["102"]["customer_tier"] == "pro" and by_id["101"]["model"] == "rules"
        assert isinstance(by_id["101"]["triaged_at"], datetime)
