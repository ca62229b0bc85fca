"""From a Kafka record to a message of the contract: decode the value, open its envelope, map its fields.

    value ──(schema registry wire format? Avro / Protobuf / JSON Schema : JSON)──► document
    document ──(preset: debezium / cloudevents)──► the message's source
    source ──(mapping file)──► the contract's fields ──► SupportMessage (checked as ever)

With none of these configured, a value is read exactly as before (`parse_message`). Each record is
detected on its own, so a topic mixing plain JSON and registry-encoded values works.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from triage.input import presets
from triage.input.mapping import Mapping
from triage.input.presets import Skipped
from triage.input.registry import RegistryClient, UnknownSchema
from triage.input.wire import Undecodable, is_framed, unframe
from triage.message import InvalidMessage, SupportMessage, message_from_document, parse_message
from triage.settings import Settings


@dataclass(frozen=True)
class Decoded:
    message: SupportMessage
    raw: str  # what the store keeps as the value received: the text, or the decoded value as JSON


class Decoder:
    def __init__(
        self, settings: Settings, mapping: Mapping | None = None, registry: RegistryClient | None = None
    ) -> None:
        self.max_body_bytes = settings.worker.max_body_bytes
        self.preset = settings.input.preset
        self.mapping = mapping
        self.registry = registry

    @classmethod
    def from_settings(cls, settings: Settings) -> Decoder:
        """Raises MappingError for a bad mapping file (one line naming the field and its line)."""
        mapping = Mapping.load(settings.input.mapping) if settings.input.mapping else None
        registry = RegistryClient(settings.schema_registry) if settings.schema_registry.url else None
        return cls(settings, mapping, registry)

    @property
    def plain(self) -> bool:
        return self.preset is None and self.mapping is None and self.registry is None

    def decode(
        self, value: bytes | None, headers: list[tuple[str, bytes]] | None = None
    ) -> Decoded | Skipped:
        """Raises InvalidMessage (dead-letter it) or RegistryUnavailable (try again later)."""
        if self.plain and not is_framed(value):
            message = parse_message(value, self.max_body_bytes)
            return Decoded(message, value.decode("utf-8") if value else "")
        document = self.document(value)
        source = self.source(document, dict(headers or []))
        if isinstance(source, Skipped):
            return source
        mapped = self.mapping.apply(source) if self.mapping else source
        message = message_from_document(mapped, self.max_body_bytes)
        return Decoded(message, json.dumps(document, ensure_ascii=False, default=str))

    def document(self, value: bytes | None) -> Any:
        """The value as Python data: None for a tombstone."""
        if value is None or value == b"":
            if self.preset == "debezium":
                return None
            raise InvalidMessage("empty_value", "the record has no value")
        if is_framed(value):
            return self._registry_value(value)
        try:
            return json.loads(value.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise InvalidMessage("invalid_utf8", f"not UTF-8 at byte {error.start}: {error.reason}") from None
        except json.JSONDecodeError as error:
            raise InvalidMessage(
                "invalid_json", f"{error.msg} at line {error.lineno} column {error.colno}"
            ) from None

    def _registry_value(self, value: bytes) -> Any:
        schema_id, payload = unframe(value)
        if self.registry is None:
            raise InvalidMessage(
                "schema_unknown",
                f"the value is in the schema registry's wire format (schema id {schema_id}) and "
                "TRIAGE_SCHEMA_REGISTRY__URL is not set",
            )
        try:
            schema = self.registry.schema(schema_id)
        except UnknownSchema as error:
            raise InvalidMessage("schema_unknown", str(error)) from None
        try:
            if schema.type == "AVRO":
                from triage.input import avro

                return avro.decode(schema.text, payload)
            if schema.type == "JSON":
                from triage.input import json_schema

                return json_schema.decode(schema.text, payload)
            if schema.type == "PROTOBUF":
                from triage.input import protobuf

                return protobuf.decode(schema.text, payload, self._references(schema))
        except Undecodable as error:
            raise InvalidMessage("undecodable", f"schema id {schema_id}: {error}") from None
        except ValueError as error:  # a schema that does not parse (ProtoSchemaError is one)
            raise InvalidMessage("undecodable", f"schema id {schema_id} cannot be used: {error}") from None
        raise InvalidMessage("undecodable", f"schema id {schema_id} has an unknown type {schema.type}")

    def _references(self, schema: Any) -> dict[str, str]:
        """The .proto files a Protobuf schema imports, by the names it imports them under."""
        assert self.registry is not None
        return {
            ref["name"]: self.registry.subject_version(ref["subject"], ref["version"]).text
            for ref in schema.references
        }

    def source(self, document: Any, headers: dict[str, bytes]) -> Any:
        if self.preset == "debezium":
            return presets.debezium(document)
        if self.preset == "cloudevents":
            event = presets.cloudevent(document, headers)
            return event if self.mapping else presets.cloudevent_data(event)
        return document
