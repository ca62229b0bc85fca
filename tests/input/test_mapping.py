"""The mapping file: JMESPath expressions per contract field, checked at start, applied per record."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.input.decoder import Decoded, Decoder
from triage.input.mapping import Mapping, MappingError
from triage.message import InvalidMessage
from triage.settings import Settings

ZENDESK_EVENT = {
    "ticket": {"id": 48211, "subject": "Checkout down", "via": "email"},
    "comment": {"body": "Every checkout fails with a 503"},
    "requester": {"first_name": "Dana", "last_name": None, "email": "dana@acme.com", "tier": "enterprise"},
}
MAPPING = """\
id: join('-', ['zd', to_string(ticket.id)])
conversation_id: to_string(ticket.id)
body: comment.body
subject: ticket.subject
channel: ticket.via
customer.name: join(' ', [requester.first_name, requester.last_name][?@])
customer.email: requester.email
customer.tier: requester.tier
ticket.system: "'zendesk'"
ticket.id: ticket.id
metadata.source: {value: zendesk-connector}
"""


def decode(mapping: str, document: str) -> Decoded:
    result = Decoder(Settings(), Mapping.parse(mapping)).decode(document.encode())
    assert isinstance(result, Decoded)
    return result


def test_every_contract_field_can_be_mapped_with_constants_and_joins():
    import json

    message = decode(MAPPING, json.dumps(ZENDESK_EVENT)).message
    assert (message.id, message.conversation_id, message.subject) == ("zd-48211", "48211", "Checkout down")
    assert (message.body, message.channel) == ("Every checkout fails with a 503", "email")
    assert (message.customer.name, message.customer.email, message.customer.tier) == (
        "Dana",
        "dana@acme.com",
        "enterprise",
    )
    assert message.ticket is not None and (message.ticket.system, message.ticket.id) == ("zendesk", "48211")
    assert message.metadata == {"source": "zendesk-connector"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: ticket.id\nbody: comment.[body\n", "mapping:2: body: bad JMESPath expression `comment.[body`"),
        (
            "id: ticket.id\nbody: text\npriority: p\n",
            "mapping:3: priority: not a field of the message contract",
        ),
        ("id: ticket.id\n", "no expression for body (required)"),
        ("id: ticket.id\nbody: {const: 1}\n", "mapping:2: body: a constant is written {value: ...}"),
        ("- id\n", "expected `field: expression` lines"),
    ],
)
def test_a_bad_mapping_names_the_field_and_its_line(text: str, expected: str):
    with pytest.raises(MappingError) as error:
        Mapping.parse(text, Path("mapping"))
    assert expected in str(error.value)


def test_a_record_without_an_id_or_a_body_is_unmappable_naming_the_field():
    mapping = Mapping.parse("id: ticket.id\nbody: comment.body\n")
    with pytest.raises(InvalidMessage) as error:
        mapping.apply({"ticket": {"id": 1}, "comment": {}})
    assert error.value.code == "unmappable" and error.value.detail.startswith("body: `comment.body`")
    with pytest.raises(InvalidMessage) as error:
        mapping.apply({"comment": {"body": "hi"}})
    assert error.value.code == "unmappable" and error.value.detail.startswith("id: ")


def test_a_bad_mapping_stops_the_worker_at_start_with_one_line(tmp_path: Path, monkeypatch):
    import subprocess
    import sys

    bad = tmp_path / "input.yaml"
    bad.write_text("id: ticket.id\nbody: comment..body\n")
    env = {"TRIAGE_INPUT__MAPPING": str(bad), "TRIAGE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-m", "triage", "run"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{bad}:2: body: bad JMESPath expression" in lines[0], done.stderr
