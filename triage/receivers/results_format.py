"""The results record's schema, and its encoding on the results topic (`TRIAGE_KAFKA__RESULTS_FORMAT`).

`json` (default) is plain JSON. `avro` and `protobuf` are written in the schema registry's wire format,
the schema registered under `<results_topic>-value` at start (after a compatibility check), so a
Kafka Connect sink (BigQuery, Redshift, Snowflake, S3) loads the topic without a translator.

One table of fields below makes the Avro schema, the .proto and the JSON Schema, so they cannot
drift apart. Evolution: a new field is added at the end, optional with a default (null), which keeps
the subject BACKWARD compatible (the registry's default); a field is never renamed or retyped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from triage.input.registry import RegistryClient, RegistryError
from triage.input.wire import frame
from triage.settings import Settings


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string, double, long, boolean, strings, timestamp, json (an object, as JSON text)
    required: bool
    doc: str


FIELDS = (
    Field("message_id", "string", True, "the message's id (the input's `id`)"),
    Field("conversation_id", "string", True, "the conversation (the message's own id when it has none)"),
    Field("urgency", "string", True, "low, normal, high or urgent"),
    Field("sentiment", "string", True, "negative, neutral or positive"),
    Field("category", "string", True, "one of the categories file's names"),
    Field("language", "string", True, "ISO 639-1 code"),
    Field("summary", "string", True, "one line, PII masked"),
    Field("confidence", "double", True, "the urgency's confidence, 0 to 1"),
    Field("model", "string", True, "backend:model that judged the message"),
    Field("degraded", "boolean", True, "true when the fallback model answered for an unavailable LLM"),
    Field("prompt_tokens", "long", True, "LLM tokens in (0 for the embedded model)"),
    Field("completion_tokens", "long", True, "LLM tokens out"),
    Field("cost_usd", "double", True, "the LLM call's price"),
    Field("receivers", "strings", True, "the receivers the routing tree chose"),
    Field("channel", "string", False, "email, chat, ..."),
    Field("customer_id", "string", False, "the customer's id"),
    Field("customer_tier", "string", False, "the customer's tier"),
    Field("ticket_id", "string", False, "the helpdesk ticket's id, as text"),
    Field("created_at", "timestamp", False, "when the customer wrote"),
    Field("triaged_at", "timestamp", True, "when the worker judged it"),
    Field("decided_by", "string", False, "embedded or llm (the cascade backend)"),
    Field("customer_history", "json", False, "the customer's history (docs/customers.md), JSON text"),
)

_AVRO = {"string": "string", "double": "double", "long": "long", "boolean": "boolean", "json": "string"}
_PROTO = {"string": "string", "double": "double", "long": "int64", "boolean": "bool", "json": "string"}
_JSON = {"string": "string", "double": "number", "long": "integer", "boolean": "boolean", "json": "object"}


@cache
def avro_schema() -> str:
    fields = []
    for field in FIELDS:
        if field.kind == "strings":
            kind: Any = {"type": "array", "items": "string"}
        elif field.kind == "timestamp":
            kind = {"type": "long", "logicalType": "timestamp-millis"}
        else:
            kind = _AVRO[field.kind]
        entry: dict[str, Any] = {"name": field.name, "type": kind, "doc": field.doc}
        if not field.required:
            entry["type"] = ["null", kind]
            entry["default"] = None
        fields.append(entry)
    record = {"type": "record", "name": "TriageResult", "namespace": "io.triage", "fields": fields}
    return json.dumps(record, indent=2)


@cache
def proto_schema() -> str:
    lines = [
        'syntax = "proto3";',
        "package triage.v1;",
        "",
        'import "google/protobuf/timestamp.proto";',
        "",
        "message TriageResult {",
    ]
    for number, field in enumerate(FIELDS, start=1):
        if field.kind == "strings":
            kind = "repeated string"
        elif field.kind == "timestamp":
            kind = "google.protobuf.Timestamp"
        else:
            kind = ("" if field.required else "optional ") + _PROTO[field.kind]
        lines.append(f"  {kind} {field.name} = {number};  // {field.doc}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def json_schema() -> str:
    properties: dict[str, Any] = {}
    for field in FIELDS:
        if field.kind == "strings":
            kind: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
        elif field.kind == "timestamp":
            kind = {"type": "string", "format": "date-time"}
        else:
            kind = {"type": _JSON[field.kind]}
        if not field.required:
            kind = {**kind, "type": [kind["type"], "null"]}
        properties[field.name] = {**kind, "description": field.doc}
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "TriageResult",
        "type": "object",
        "properties": properties,
        "required": [field.name for field in FIELDS if field.required],
    }
    return json.dumps(schema, indent=2)


SCHEMAS = {"avro": avro_schema, "protobuf": proto_schema, "json-schema": json_schema}


def record(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload's fields of the schema, typed for it (ids as text, times as datetimes)."""
    out: dict[str, Any] = {}
    for field in FIELDS:
        value = payload.get(field.name)
        if value is None:
            out[field.name] = None if not field.required else _zero(field)
        elif field.kind == "timestamp":
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            out[field.name] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        elif field.kind == "string":
            out[field.name] = str(value)
        elif field.kind == "json":
            out[field.name] = json.dumps(value, ensure_ascii=False, sort_keys=True)
        else:
            out[field.name] = value
    return out


def _zero(field: Field) -> Any:
    return {"string": "", "double": 0.0, "long": 0, "boolean": False, "strings": []}.get(field.kind)


class ResultsEncoder:
    """Bytes of a results record in the configured format; `prepare()` registers the schema (at start)."""

    def __init__(self, settings: Settings) -> None:
        self.format = settings.kafka.results_format
        self.subject = f"{settings.kafka.results_topic}-value"
        self.schema_id: int | None = None
        self.registry: RegistryClient | None = None
        if self.format != "json":
            if not settings.schema_registry.url:
                raise RegistryError(
                    f"TRIAGE_KAFKA__RESULTS_FORMAT={self.format} needs a schema registry: set "
                    "TRIAGE_SCHEMA_REGISTRY__URL"
                )
            self.registry = RegistryClient(settings.schema_registry)

    def prepare(self) -> None:
        if self.registry is not None and self.schema_id is None:
            kind, text = ("AVRO", avro_schema()) if self.format == "avro" else ("PROTOBUF", proto_schema())
            self.schema_id = self.registry.register(self.subject, kind, text)

    def encode(self, payload: dict[str, Any]) -> bytes:
        if self.format == "json":
            return json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.prepare()
        assert self.schema_id is not None
        value = record(payload)
        if self.format == "avro":
            from triage.input import avro

            return frame(self.schema_id, avro.encode(avro_schema(), value))
        times = {f.name for f in FIELDS if f.kind == "timestamp"}
        as_json = {k: (v.isoformat() if k in times and v else v) for k, v in value.items() if v is not None}
        from triage.input import protobuf

        return frame(self.schema_id, protobuf.encode(proto_schema(), as_json))
