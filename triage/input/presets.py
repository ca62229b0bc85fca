"""Built-in shapes of records that carry a support message inside an envelope.

- `debezium`: a change event of a row (with or without the JSON converter's schema envelope); the row's
  `after` image is the message. Deletes and tombstones are not messages: skipped and counted.
- `cloudevents`: a CloudEvent in structured mode (the JSON event is the value) or binary mode (the
  attributes in `ce_` headers, the value is `data`). Without a mapping file `data` is the message;
  with one, the expressions see the whole event (`id`, `source`, `type`, `time`, ..., `data`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from triage.message import InvalidMessage

PRESETS = ("debezium", "cloudevents")


@dataclass(frozen=True)
class Skipped:
    """A record that is not a message (a delete, a tombstone): no effect, no dead letter, counted."""

    reason: str


def debezium(value: Any) -> Any:
    """The row after the change, or Skipped."""
    if value is None:
        return Skipped("tombstone")
    if not isinstance(value, dict):
        raise InvalidMessage("unmappable", f"not a Debezium change event: a JSON {type(value).__name__}")
    if "payload" in value and "schema" in value:  # the JSON converter with schemas.enable=true
        value = value["payload"]
        if value is None:
            return Skipped("tombstone")
    if "op" not in value and "after" not in value:
        raise InvalidMessage("unmappable", "not a Debezium change event: no `op` and no `after`")
    if value.get("op") == "d" or value.get("after") is None:
        return Skipped("deleted")
    return value["after"]


def cloudevent(value: Any, headers: dict[str, bytes]) -> dict[str, Any]:
    """The event, in the structured mode's shape (attributes and `data`) whichever mode it came in."""
    if "ce_specversion" in headers:  # binary mode: the Kafka protocol binding's header names
        event: dict[str, Any] = {
            name.removeprefix("ce_"): raw.decode("utf-8", "replace")
            for name, raw in headers.items()
            if name.startswith("ce_")
        }
        event["data"] = value
        return event
    if not isinstance(value, dict) or "specversion" not in value:
        raise InvalidMessage(
            "unmappable", "not a CloudEvent: no `specversion` in the value and no `ce_specversion` header"
        )
    event = dict(value)
    if "data_base64" in event and "data" not in event:
        raw = base64.b64decode(event.pop("data_base64"))
        try:
            event["data"] = json.loads(raw)
        except ValueError:
            event["data"] = raw.decode("utf-8", "replace")
    return event


def cloudevent_data(event: dict[str, Any]) -> Any:
    """The message of an event read without a mapping file: its `data`, where the id defaults to the
    event's own id (an event id is unique per source, as a message id must be)."""
    data = event.get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise InvalidMessage("unmappable", "the CloudEvent's data is text, not a JSON object") from None
    if not isinstance(data, dict):
        raise InvalidMessage("unmappable", "the CloudEvent has no JSON object in `data`")
    if "id" not in data and event.get("id") is not None:
        data = {**data, "id": str(event["id"])}
    return data
