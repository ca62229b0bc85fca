"""The on-call parts of a Slack alert (layout only): "I'm on it", who took it and when, "Mute similar
for 2 h" with the matchers it would silence, and the line an escalation leads with.

Each function returns Block Kit blocks (none when it has nothing to show); triage/receivers/slack.py
adds them to its alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

BLOCK_PREFIX = "triage_oncall:"  # + the alert's delivery id
TAKE, MUTE = "triage_take", "triage_mute"


@dataclass(frozen=True)
class TakeView:
    """An alert's on-call part: the delivery its buttons name, who took it (if someone did), and for an
    incident alert the matchers its mute button would silence."""

    delivery_id: int
    taken_by: str | None = None
    taken_at: datetime | None = None
    mute: Sequence[str] = ()


def _escape(text: Any) -> str:
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def take_blocks(view: TakeView | None) -> list[dict[str, Any]]:
    """`✋ Taken by ana at 10:42 UTC`, or the "I'm on it" button; an incident's mute button and its
    matchers."""
    if view is None:
        return []
    built: list[dict[str, Any]] = []
    elements = []
    if view.taken_by is not None:
        at = view.taken_at.astimezone(UTC) if view.taken_at else None
        when = f" at {at:%H:%M} UTC" if at else ""
        built.append(_context(f":raised_hand: Taken by *{_escape(view.taken_by)}*{when}"))
    else:
        elements.append(_button(TAKE, "I'm on it", "primary"))
    if view.mute:
        elements.append(_button(MUTE, "Mute similar for 2 h"))
    if elements:
        built.append(
            {"type": "actions", "block_id": f"{BLOCK_PREFIX}{view.delivery_id}", "elements": elements}
        )
    if view.mute:
        shown = " and ".join(f"`{_escape(m).replace('`', '')}`" for m in view.mute)
        built.append(_context(f":no_bell: Mute similar silences {shown} for 2 h (`triage silence list`)"))
    return built


def escalated_blocks(case: dict[str, Any]) -> list[dict[str, Any]]:
    """`⏰ Not taken for 15 min: alerted through oncall at 10:02 UTC, nobody said "I'm on it"`."""
    escalated = case.get("escalated")
    if not isinstance(escalated, dict):
        return []
    incident = escalated.get("incident") or {}
    what = f"This incident ({incident.get('cases')} cases)" if incident else "This case"
    sent = _time(escalated.get("sent_at"))
    text = (
        f":alarm_clock: *Not taken for {not_taken_for(escalated.get('after_s'))}*: {what} was alerted "
        f"through {_escape(escalated.get('from'))}{f' at {sent}' if sent else ''} and nobody took it."
    )
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def not_taken_for(seconds: Any) -> str:
    """`15 min`, `2 h`, `1 h 30 min`, `45 s`."""
    seconds = round(float(seconds or 0))
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return " ".join(([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if minutes else []))


def _time(value: Any) -> str | None:
    try:
        return f"{datetime.fromisoformat(str(value)).astimezone(UTC):%H:%M} UTC"
    except ValueError:
        return None


def _button(action_id: str, text: str, style: str | None = None) -> dict[str, Any]:
    button = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": action_id,
    }
    if style:
        button["style"] = style
    return button
