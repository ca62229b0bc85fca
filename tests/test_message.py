import json

import pytest

from triage.message import InvalidMessage, alert_priority, parse_message

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


def test_explicit_nulls_in_optional_fields_mean_absent():
    value = json.dumps(
        {
            "id": "a-1",
            "body": "Has order 42-7781 shipped?",
            "subject": None,
            "conversation_id": None,
            "channel": None,
            "created_at": None,
            "customer": None,
            "ticket": None,
            "metadata": None,
        }
    ).encode()
    message = parse_message(value, LIMIT)
    assert (message.customer.tier, message.ticket, message.metadata) == (None, None, {})
    assert message.conversation_key == "a-1"
    nested = b'{"id": "a", "body": "b", "customer": {"tier": null, "email": null}, "ticket": {"url": null}}'
    assert parse_message(nested, LIMIT).customer.tier is None


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (b'{"id": null, "body": "hi"}', "id: Input should be a valid string"),
        (b'{"id": "a", "body": null}', "body: Input should be a valid string"),
        (
            b'{"id": "a", "body": "b", "customer": "Ana <ana@example.com>"}',
            "customer: Input should be a valid",
        ),
        (b'{"id": "a", "body": "b", "metadata": []}', "metadata: Input should be a valid dictionary"),
    ],
)
def test_null_in_a_required_field_and_wrong_types_stay_invalid(value, detail):
    with pytest.raises(InvalidMessage) as caught:
        parse_message(value, LIMIT)
    assert (caught.value.code, detail in caught.value.detail) == ("invalid_schema", True)


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (
            rb'{"id": "a-2", "body": "App crashed again \ud83d please fix"}',
            r"body: unpaired surrogate \ud83d at character 18",
        ),
        (
            rb'{"id": "a", "body": "b", "subject": "\udc00"}',
            r"subject: unpaired surrogate \udc00 at character 0",
        ),
        (
            rb'{"id": "a", "body": "b", "customer": {"name": "Ana \ud800"}}',
            "customer.name: unpaired surrogate",
        ),
        (rb'{"id": "a", "body": "b", "metadata": {"tags": ["ok", "x\ud83d"]}}', "metadata.tags.1: unpaired"),
        (rb'{"id": "a", "body": "b", "extra": {"\ud83d": 1}}', r"extra.\ud83d (the key): unpaired"),
    ],
)
def test_a_lone_surrogate_anywhere_is_refused_once_as_invalid_unicode(value, detail):
    with pytest.raises(InvalidMessage) as caught:
        parse_message(value, LIMIT)
    assert caught.value.code == "invalid_unicode"
    assert detail in caught.value.detail
    caught.value.detail.encode("utf-8")  # it goes into a dead-letter header


def test_a_surrogate_pair_is_an_emoji_not_an_error():
    assert parse_message(rb'{"id": "a", "body": "ok \ud83d\ude00"}', LIMIT).body == "ok 😀"


def test_waiting_alerts_go_urgent_then_high_then_the_rest_by_age():
    waiting = ["low", "normal", "urgent", "high", "low", "urgent"]  # oldest first
    by_priority = sorted(range(len(waiting)), key=lambda i: -alert_priority(waiting[i]))  # stable: by age
    assert [waiting[i] for i in by_priority] == ["urgent", "urgent", "high", "low", "normal", "low"]
