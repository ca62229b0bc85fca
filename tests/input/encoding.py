"""How producers write registry-encoded values, written out here from the Confluent wire format's
description (independently of triage/input): magic byte 0, schema id as 4 big-endian bytes, payload."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import fastavro
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

TICKET_AVRO = {
    "type": "record",
    "name": "Ticket",
    "namespace": "com.acme.support",
    "fields": [
        {"name": "ticket_id", "type": "long"},
        {"name": "text", "type": "string"},
        {"name": "requester_email", "type": ["null", "string"], "default": None},
        {"name": "opened_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
# version 2 of the same subject: a field added with a default (BACKWARD compatible)
TICKET_AVRO_V2 = {
    **TICKET_AVRO,
    "fields": [*TICKET_AVRO["fields"], {"name": "tier", "type": ["null", "string"], "default": None}],
}
MAPPING = """\
id: to_string(ticket_id)
body: text
channel: "'email'"
customer.email: requester_email
customer.tier: tier
created_at: opened_at
"""
TICKET_PROTO = """\
syntax = "proto3";
package acme.support;

message Envelope { string trace = 1; }

message Ticket {
  int64 ticket_id = 1;
  string text = 2;
  string requester_email = 3;
  message Attachment { string name = 1; }
}
"""
TICKET_JSON_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "body": {"type": "string"}},
    "required": ["id", "body"],
}


def framed(schema_id: int, payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + payload


def avro_value(schema_id: int, schema: dict, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return framed(schema_id, out.getvalue())


def json_schema_value(schema_id: int, document: Any) -> bytes:
    return framed(schema_id, json.dumps(document).encode())


def proto_ticket_class() -> Any:
    """acme.support.Ticket built from a hand-written descriptor (the same fields as TICKET_PROTO)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="ticket_test.proto", package="acme.support", syntax="proto3"
    )
    envelope = file.message_type.add(name="Envelope")
    envelope.field.add(name="trace", number=1, type=9, label=1)
    ticket = file.message_type.add(name="Ticket")
    ticket.field.add(name="ticket_id", number=1, type=3, label=1)  # int64
    ticket.field.add(name="text", number=2, type=9, label=1)  # string
    ticket.field.add(name="requester_email", number=3, type=9, label=1)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("acme.support.Ticket"))


def proto_value(schema_id: int, **fields: Any) -> bytes:
    """The second message of the file: index path [1], written as count 1 then index 1 (zig-zag: 2, 2)."""
    message = proto_ticket_class()(**fields)
    return framed(schema_id, bytes([2, 2]) + message.SerializeToString())
