"""The built-in presets: Debezium change events and CloudEvents in both modes."""

from __future__ import annotations

import base64
import json

import pytest

from triage.input.decoder import Decoded, Decoder
from triage.input.mapping import Mapping
from triage.input.presets import Skipped
from triage.message import InvalidMessage
from triage.settings import InputSettings, Settings

ROW = {"id": "m-1", "body": "Charged twice", "channel": "email", "customer": None}
ROW_MAPPING = "id: join('', ['db-', to_string(ticket_id)])\nbody: message_text\ncustomer.id: customer_ref\n"


def reader(preset: str, mapping: str | None = None) -> Decoder:
    settings = Settings(input=InputSettings(preset=preset))
    return Decoder(settings, Mapping.parse(mapping) if mapping else None)


def change(op: str, before: dict | None, after: dict | None, envelope: bool = False) -> bytes:
    payload = {"before": before, "after": after, "op": op, "source": {"table": "messages"}, "ts_ms": 1}
    value = {"schema": {"type": "struct", "fields": []}, "payload": payload} if envelope else payload
    return json.dumps(value).encode()


@pytest.mark.parametrize("envelope", [False, True])
def test_debezium_creates_and_updates_are_the_row_after(envelope: bool):
    for op in ("c", "u", "r"):
        result = reader("debezium").decode(change(op, None, ROW, envelope))
        assert isinstance(result, Decoded) and (result.message.id, result.message.body) == (
            "m-1",
            "Charged twice",
        )


def test_debezium_rows_are_mapped_by_the_mapping_file():
    row = {"ticket_id": 17, "message_text": "Where is my order?", "customer_ref": "c-9"}
    result = reader("debezium", ROW_MAPPING).decode(change("c", None, row, envelope=True))
    assert isinstance(result, Decoded)
    assert (result.message.id, result.message.body, result.message.customer.id) == (
        "db-17",
        "Where is my order?",
        "c-9",
    )


def test_debezium_deletes_and_tombstones_are_skipped_not_dead_lettered():
    assert reader("debezium").decode(change("d", ROW, None)) == Skipped("deleted")
    assert reader("debezium").decode(change("d", ROW, None, envelope=True)) == Skipped("deleted")
    assert reader("debezium").decode(None) == Skipped("tombstone")
    with pytest.raises(InvalidMessage) as error:
        reader("debezium").decode(b'{"id": "x", "body": "not a change event"}')
    assert error.value.code == "unmappable"


def test_cloudevents_structured_mode_data_is_the_message_and_the_event_id_its_default():
    event = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/chat",
        "type": "com.acme.message",
        "data": {"body": "The app crashes on login", "channel": "chat"},
    }
    result = reader("cloudevents").decode(json.dumps(event).encode())
    assert isinstance(result, Decoded) and (result.message.id, result.message.channel) == ("evt-1", "chat")
    event["data_base64"] = base64.b64encode(json.dumps(event.pop("data")).encode()).decode()
    assert reader("cloudevents").decode(json.dumps(event).encode()).message.body == "The app crashes on login"


def test_cloudevents_binary_mode_reads_the_ce_headers():
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"evt-2"), ("ce_source", b"/reviews"), ("ce_type", b"r")]
    data = json.dumps({"body": "Two stars, slow delivery"}).encode()
    result = reader("cloudevents").decode(data, headers)
    assert isinstance(result, Decoded) and (result.message.id, result.message.body) == (
        "evt-2",
        "Two stars, slow delivery",
    )
    mapped = reader("cloudevents", "id: id\nbody: data.body\nchannel: source\n").decode(data, headers)
    assert isinstance(mapped, Decoded) and mapped.message.channel == "/reviews"


def test_a_value_that_is_not_a_cloudevent_is_unmappable():
    with pytest.raises(InvalidMessage) as error:
        reader("cloudevents").decode(b'{"id": "x", "body": "plain"}')
    assert error.value.code == "unmappable" and "specversion" in error.value.detail
