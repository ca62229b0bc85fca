"""A click on an alert's feedback buttons, read from Slack's block_actions payload and checked.

The payload says which alert was clicked (the actions block's id names the delivery), in which channel
and message, by whom, and what was chosen. It is believed only as far as the store agrees: the delivery
must have a receipt, posted in that channel as that message; the value must be one the menu offers.
Anything else is refused with a reason, and nothing is stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from triage.feedback.fields import BLOCK_PREFIX, FIELDS, RIGHT, SETTERS, values
from triage.feedback.recorder import Judgement
from triage.store.tables import ReceiptRow

BLOCK_ID = re.compile(rf"^{re.escape(BLOCK_PREFIX)}(\d{{1,18}})$")
ACTION_TS = re.compile(r"^\d{9,11}\.\d{1,6}$")


class Refused(Exception):
    """A click that stores nothing: `reason` is a short code (for the metric), the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Click:
    """One action of a block_actions payload: field None is the Right button."""

    delivery_id: int
    channel: str
    ts: str
    user_id: str
    user_name: str | None
    action_ts: str
    field: str | None
    value: str | None


def read_clicks(payload: Any, categories: Sequence[str]) -> list[Click]:
    """The feedback actions of a block_actions payload; Refused("malformed") when it is not one."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise Refused("malformed", f"not a block_actions payload (type {_type_of(payload)})")
    user = _dict(payload, "user")
    channel = _dict(payload, "channel")
    container = _dict(payload, "container")
    user_id, channel_id, ts = user.get("id"), channel.get("id"), container.get("message_ts")
    if not all(isinstance(value, str) and value for value in (user_id, channel_id, ts)):
        raise Refused("malformed", "user.id, channel.id or container.message_ts missing")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        raise Refused("malformed", "no actions")
    name = user.get("username") or user.get("name")
    return [
        _click(action, categories, channel_id, ts, user_id, name if isinstance(name, str) else None)
        for action in actions
    ]


def _click(
    action: Any, categories: Sequence[str], channel: str, ts: str, user_id: str, user_name: str | None
) -> Click:
    if not isinstance(action, dict):
        raise Refused("malformed", "an action is not an object")
    action_id, block_id, action_ts = action.get("action_id"), action.get("block_id"), action.get("action_ts")
    block = BLOCK_ID.match(block_id) if isinstance(block_id, str) else None
    if block is None:
        raise Refused("malformed", f"block_id {str(block_id)[:80]!r} is not a triage alert's")
    if not isinstance(action_ts, str) or not ACTION_TS.match(action_ts):
        raise Refused("malformed", f"action_ts {str(action_ts)[:40]!r} is not a Slack timestamp")
    if action_id == RIGHT:
        field, value = None, None
    elif action_id in SETTERS:
        field = SETTERS[action_id]
        selected = action.get("selected_option")
        value = selected.get("value") if isinstance(selected, dict) else None
        if value not in values(field, categories):
            raise Refused("malformed", f"{str(value)[:80]!r} is not among the {field} menu's values")
    else:
        raise Refused("malformed", f"unknown action_id {str(action_id)[:80]!r}")
    return Click(int(block[1]), channel, ts, user_id, user_name, action_ts, field, value)


def check(click: Click, receipt: ReceiptRow | None) -> None:
    """Refused unless the clicked alert is the one the store has for the delivery, where it was posted."""
    if receipt is None or receipt.system != "slack":
        raise Refused("unknown_message", f"no alert was posted for delivery {click.delivery_id}")
    if receipt.place != click.channel:
        raise Refused(
            "wrong_channel",
            f"delivery {click.delivery_id}'s alert was posted to {receipt.place}, the click came from "
            f"{click.channel[:80]}",
        )
    if receipt.ref != click.ts:
        raise Refused(
            "unknown_message", f"delivery {click.delivery_id}'s alert is {receipt.ref}, not {click.ts[:40]}"
        )


def judgements(click: Click, receipt: ReceiptRow) -> list[Judgement]:
    """What a click says: Right confirms the urgency, sentiment and category; a menu sets one field."""
    fields = FIELDS if click.field is None else (click.field,)
    return [
        Judgement(
            message_id=receipt.message_id,
            field=field,
            value=click.value,
            source="slack",
            person_id=click.user_id,
            person_name=click.user_name,
            place=f"slack {click.channel} {click.ts}",
            event=f"{click.action_ts}:{click.user_id}",
            at=datetime.fromtimestamp(float(click.action_ts), UTC),
        )
        for field in fields
    ]


def _dict(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def _type_of(payload: Any) -> str:
    return str(payload.get("type"))[:40] if isinstance(payload, dict) else type(payload).__name__
