"""JSON Schema values in the Confluent wire format: UTF-8 JSON after the header, checked against the
schema the record names (a value that breaks its own schema is undecodable, not guessed at)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema

from triage.input.wire import Undecodable


@lru_cache(maxsize=256)
def validator(schema_text: str) -> Any:
    schema = json.loads(schema_text)
    return jsonschema.validators.validator_for(schema)(schema)


def decode(schema_text: str, payload: bytes) -> Any:
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Undecodable(f"JSON Schema: the payload is not JSON: {error}") from None
    problem = jsonschema.exceptions.best_match(validator(schema_text).iter_errors(value))
    if problem is not None:
        where = "/".join(str(part) for part in problem.absolute_path) or "the value"
        raise Undecodable(f"JSON Schema: {where}: {problem.message}")
    return value
