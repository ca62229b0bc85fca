"""The results record in Avro or Protobuf: its schema registered (compatibility checked) under
`<topic>-value`, values in the wire format that a Kafka Connect sink's converter reads."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator

import fastavro
import pytest

from tests.fakes.schema_registry import FakeSchemaRegistry
from tests.input.encoding import TICKET_AVRO
from triage.input import protobuf
from triage.input.registry import RegistryError
from triage.receivers.results_format import ResultsEncoder, avro_schema, proto_schema
from triage.settings import KafkaSettings, SchemaRegistrySettings, Settings

PAYLOAD = {
    "message_id": "m-1",
    "conversation_id": "c-1",
    "urgency": "urgent",
    "sentiment": "negative",
    "category": "outage",
    "language": "en",
    "summary": "Checkout down",
    "confidence": 0.93,
    "model": "embedded:e5",
    "degraded": False,
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "cost_usd": 0.0,
    "receivers": ["oncall", "helpdesk"],
    "channel": "email",
    "customer_id": None,
    "customer_tier": "enterprise",
    "ticket_id": 48211,
    "created_at": "2026-11-20T09:00:00+00:00",
    "triaged_at": "2026-11-20T09:00:01.250+00:00",
    "excerpt": "not in the schema: left out",
}


@pytest.fixture
def registry() -> Iterator[FakeSchemaRegistry]:
    with FakeSchemaRegistry() as fake:
        yield fake


def encoder(registry: FakeSchemaRegistry, results_format: str) -> ResultsEncoder:
    return ResultsEncoder(
        Settings(
            kafka=KafkaSettings(results_topic="support.triaged", results_format=results_format),
            schema_registry=SchemaRegistrySettings(url=registry.address),
        )
    )


def test_avro_results_are_registered_under_the_topic_subject_and_read_back(registry: FakeSchemaRegistry):
    value = encoder(registry, "avro").encode(PAYLOAD)
    schema_id = registry.subjects["support.triaged-value"][0]
    assert value[0] == 0 and int.from_bytes(value[1:5], "big") == schema_id
    record = fastavro.schemaless_reader(
        io.BytesIO(value[5:]), fastavro.parse_schema(json.loads(registry.schemas[schema_id]["schema"])), None
    )
    assert record["ticket_id"] == "48211" and record["receivers"] == ["oncall", "helpdesk"]
    assert record["customer_id"] is None and record["triaged_at"].microsecond == 250_000
    assert encoder(registry, "avro").encode(PAYLOAD)[1:5] == value[1:5]  # a restart reuses the id


def test_protobuf_results_decode_with_the_registered_proto(registry: FakeSchemaRegistry):
    value = encoder(registry, "protobuf").encode(PAYLOAD)
    schema_id = registry.subjects["support.triaged-value"][0]
    assert registry.schemas[schema_id]["schemaType"] == "PROTOBUF"
    record = protobuf.decode(registry.schemas[schema_id]["schema"], value[5:])
    assert record["message_id"] == "m-1" and record["urgency"] == "urgent" and record["ticket_id"] == "48211"
    assert record["created_at"] == "2026-11-20T09:00:00Z"


def test_an_incompatible_subject_stops_the_start_with_one_line(registry: FakeSchemaRegistry):
    registry.register("support.triaged-value", {**TICKET_AVRO, "name": "TriageResult"})
    with pytest.raises(
        RegistryError, match=r"not compatible with the latest version of support\.triaged-value"
    ):
        encoder(registry, "avro").prepare()


def test_avro_or_protobuf_without_a_registry_is_refused():
    with pytest.raises(RegistryError, match="TRIAGE_SCHEMA_REGISTRY__URL"):
        ResultsEncoder(Settings(kafka=KafkaSettings(results_format="avro")))


def test_the_schema_command_prints_each_format():
    def schema(fmt: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "triage", "schema", "results", "--format", fmt],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert json.loads(schema("avro")) == json.loads(avro_schema())
    assert json.loads(schema("json-schema"))["required"][0] == "message_id"
    assert schema("protobuf").strip() == proto_schema().strip()
