"""Values in the schema registry's wire format, decoded with the schema their record names, against a
local registry stand-in; a mapping over them; each failure with its own dead-letter code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.fakes.schema_registry import FakeSchemaRegistry
from tests.input.encoding import (
    MAPPING,
    TICKET_AVRO,
    TICKET_AVRO_V2,
    TICKET_JSON_SCHEMA,
    TICKET_PROTO,
    avro_value,
    framed,
    json_schema_value,
    proto_value,
)
from triage.input.decoder import Decoded, Decoder
from triage.input.mapping import Mapping
from triage.input.registry import RegistryClient, RegistryError, RegistryUnavailable
from triage.message import InvalidMessage
from triage.settings import SchemaRegistrySettings, Settings

OPENED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> Iterator[FakeSchemaRegistry]:
    with FakeSchemaRegistry() as fake:
        yield fake


def decoder(registry: FakeSchemaRegistry, mapping: str | None = MAPPING, **settings: object) -> Decoder:
    client = RegistryClient(SchemaRegistrySettings(url=registry.address, **settings), unknown_wait_s=0.01)
    return Decoder(Settings(), Mapping.parse(mapping) if mapping else None, client)


def decoded(result: object) -> Decoded:
    assert isinstance(result, Decoded), result
    return result


def test_avro_records_of_two_schema_versions_are_both_read_and_mapped(registry: FakeSchemaRegistry):
    v1 = registry.register("support-value", TICKET_AVRO)
    v2 = registry.register("support-value", TICKET_AVRO_V2)
    old = avro_value(v1, TICKET_AVRO, {"ticket_id": 41, "text": "Checkout is down", "opened_at": OPENED})
    new = avro_value(
        v2,
        TICKET_AVRO_V2,
        {
            "ticket_id": 42,
            "text": "Refund please",
            "requester_email": "a@b.co",
            "opened_at": OPENED,
            "tier": "pro",
        },
    )
    reader = decoder(registry)

    first, second = decoded(reader.decode(old)), decoded(reader.decode(new))

    assert (first.message.id, first.message.body, first.message.channel) == (
        "41",
        "Checkout is down",
        "email",
    )
    assert first.message.created_at == OPENED and first.message.customer.tier is None
    assert (second.message.id, second.message.customer.email, second.message.customer.tier) == (
        "42",
        "a@b.co",
        "pro",
    )
    assert json.loads(second.raw)["ticket_id"] == 42  # the store keeps the decoded value, as JSON


def test_each_schema_is_fetched_once(registry: FakeSchemaRegistry):
    schema_id = registry.register("support-value", TICKET_AVRO)
    reader = decoder(registry)
    for number in range(5):
        reader.decode(
            avro_value(schema_id, TICKET_AVRO, {"ticket_id": number, "text": "hi", "opened_at": OPENED})
        )
    assert registry.requests.count(("GET", f"/schemas/ids/{schema_id}")) == 1


def test_protobuf_picks_the_message_by_its_index_path(registry: FakeSchemaRegistry):
    schema_id = registry.register("support-value", TICKET_PROTO, "PROTOBUF")
    mapping = "id: ticket_id\nbody: text\ncustomer.email: requester_email\n"
    value = proto_value(schema_id, ticket_id=7, text="My parcel never came", requester_email="x@y.org")

    message = decoded(decoder(registry, mapping).decode(value)).message

    assert (message.id, message.body, message.customer.email) == ("7", "My parcel never came", "x@y.org")


def test_json_schema_values_are_checked_against_their_schema(registry: FakeSchemaRegistry):
    schema_id = registry.register("support-value", json.dumps(TICKET_JSON_SCHEMA), "JSON")
    reader = decoder(registry, mapping=None)

    assert (
        decoded(reader.decode(json_schema_value(schema_id, {"id": "j1", "body": "Hello"}))).message.id == "j1"
    )
    with pytest.raises(InvalidMessage) as broken:
        reader.decode(json_schema_value(schema_id, {"id": "j2"}))
    assert broken.value.code == "undecodable" and "body" in broken.value.detail


def test_plain_json_and_registry_values_mix_on_one_topic(registry: FakeSchemaRegistry):
    schema_id = registry.register("support-value", json.dumps(TICKET_JSON_SCHEMA), "JSON")
    reader = decoder(registry, mapping=None)
    assert decoded(reader.decode(b'{"id": "plain-1", "body": "Hi"}')).message.id == "plain-1"
    assert (
        decoded(reader.decode(json_schema_value(schema_id, {"id": "reg-1", "body": "Hi"}))).message.id
        == "reg-1"
    )


def test_an_unknown_schema_id_is_schema_unknown_after_retries(registry: FakeSchemaRegistry):
    with pytest.raises(InvalidMessage) as unknown:
        decoder(registry).decode(framed(999, b"\x02"))
    assert unknown.value.code == "schema_unknown" and "999" in unknown.value.detail
    assert registry.requests.count(("GET", "/schemas/ids/999")) == 3


def test_bytes_that_do_not_fit_their_schema_are_undecodable(registry: FakeSchemaRegistry):
    schema_id = registry.register("support-value", TICKET_AVRO)
    with pytest.raises(InvalidMessage) as broken:
        decoder(registry).decode(framed(schema_id, b"\x02\xff\xff"))
    assert broken.value.code == "undecodable" and f"schema id {schema_id}" in broken.value.detail


def test_a_registry_outage_is_transient_never_a_dead_letter(registry: FakeSchemaRegistry):
    schema_id = registry.register("support-value", TICKET_AVRO)
    value = avro_value(schema_id, TICKET_AVRO, {"ticket_id": 1, "text": "hi", "opened_at": OPENED})
    reader = decoder(registry)
    registry.down = True
    with pytest.raises(RegistryUnavailable):
        reader.decode(value)
    registry.down = False
    assert decoded(reader.decode(value)).message.id == "1"


def test_credentials_are_sent_and_a_refusal_is_a_configuration_error():
    with FakeSchemaRegistry(username="key", password="secret") as registry:
        schema_id = registry.register("support-value", TICKET_AVRO)
        value = avro_value(schema_id, TICKET_AVRO, {"ticket_id": 1, "text": "hi", "opened_at": OPENED})
        assert decoded(decoder(registry, username="key", password="secret").decode(value)).message.id == "1"
        with pytest.raises(RegistryError, match="USERNAME"):
            decoder(registry, username="key", password="wrong").decode(value)
    with FakeSchemaRegistry(token="t0k") as registry:
        schema_id = registry.register("support-value", TICKET_AVRO)
        value = avro_value(schema_id, TICKET_AVRO, {"ticket_id": 2, "text": "hi", "opened_at": OPENED})
        assert decoded(decoder(registry, token="t0k").decode(value)).message.id == "2"


def test_a_framed_value_without_a_registry_names_the_setting():
    with pytest.raises(InvalidMessage) as unknown:
        Decoder(Settings()).decode(framed(3, b"\x00"))
    assert unknown.value.code == "schema_unknown" and "TRIAGE_SCHEMA_REGISTRY__URL" in unknown.value.detail
