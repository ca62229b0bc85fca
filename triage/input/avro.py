"""Avro values in the Confluent wire format, read and written with fastavro.

Each record is read with the schema it was written with (its id is in the record), so a topic whose
schema evolves is read whole; the fields the message contract needs are then found by name or by the
input mapping.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any
from uuid import UUID

import fastavro

from triage.input.wire import Undecodable


@lru_cache(maxsize=256)
def parsed(schema_text: str) -> Any:
    return fastavro.parse_schema(json.loads(schema_text))


def decode(schema_text: str, payload: bytes) -> Any:
    buffer = io.BytesIO(payload)
    try:
        value = fastavro.schemaless_reader(buffer, parsed(schema_text), None)
    except Exception as error:  # fastavro raises EOFError, ValueError, IndexError... on bad bytes
        raise Undecodable(f"Avro: {type(error).__name__}: {error}") from None
    if buffer.tell() != len(payload):
        raise Undecodable(f"Avro: {len(payload) - buffer.tell()} bytes left after the record")
    return plain(value)


def encode(schema_text: str, value: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed(schema_text), value)
    return buffer.getvalue()


def plain(value: Any) -> Any:
    """JSON-ready: logical types (timestamps, decimals, UUIDs) as text, bytes as base64."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value
