import json

import pytest

from triage.message import InvalidMessage, parse_message

LIMIT = 64 * 1024


@pytest.mark.parametrize(
    ("value", "code", "detail"),
    [
        (b'{"id": "m1", "body": ', "invalid_json", "line 1 column 22"),
        (b'{"id": "m1", "body": "caf\xe9"}', "invalid_utf8", "byte 25"),
        (b'[{"id": "m1", "body": "hi"}]', "not_an_object", "got list"),
        (b'"just a string"', "not_an_object", "got str"),
        (b'{"id": "m1"}', "invalid_schema", "body: Field required"),
        (b'{"id": "m1", "body": "   "}', "invalid_schema", "body is empty"),
        (b'{"id": "m1", "body": 42}', "invalid_schema", "body: Input should be a valid string"),
        (b'{"body": "hello"}', "invalid_schema", "id: Field required"),
        (b'{"id": "", "body": "hello"}', "invalid_schema", "id:"),
        (b'{"id": "m1", "body": "hi", "created_at": "yesterday"}', "invalid_schema", "created_at"),
        (b"", "empty_value", "no value"),
        (None, "empty_value", "no value"),
    ],
)
def test_bad_records_name_the_problem(value, code, detail):
    with pytest.raises(InvalidMessage) as caught:
        parse_message(value, LIMIT)
    assert caught.value.code == code
    assert detail in caught.value.detail


def test_oversized_body_is_refused_with_sizes():
    body = "x" * (LIMIT + 1)
    with pytest.raises(InvalidMessage) as caught:
        parse_message(json.dumps({"id": "m1", "body": body}).encode(), LIMIT)
    assert caught.value.code == "body_too_large"
    assert f"{LIMIT + 1} bytes" in caught.value.detail and str(LIMIT) in caught.value.detail


def test_body_exactly_at_the_limit_is_accepted():
    body = "é" * (LIMIT // 2)  # two bytes each in UTF-8
    assert parse_message(json.dumps({"id": "m1", "body": body}).encode(), LIMIT).body == body


def test_unknown_fields_are_ignored_and_known_ones_parsed():
    value = json.dumps(
        {
            "id": "m1",
            "body": "hello",
            "conversation_id": "c9",
            "channel": "chat",
            "shoe_size": 44,
            "customer": {"id": "c1", "tier": "pro", "favourite_colour": "red"},
            "ticket": {"system": "zendesk", "id": 12345},
            "created_at": "2026-11-20T10:15:00Z",
        }
    ).encode()
    message = parse_message(value, LIMIT)
    assert (message.id, message.conversation_key, message.customer.tier, message.ticket.id) == (
        "m1",
        "c9",
        "pro",
        12345,
    )
    assert message.created_at.isoformat() == "2026-11-20T10:15:00+00:00"


def test_message_without_conversation_is_its_own_conversation():
    assert parse_message(b'{"id": "m7", "body": "hi"}', LIMIT).conversation_key == "m7"
