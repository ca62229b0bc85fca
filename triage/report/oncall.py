"""The report's on-call section as plain data: how fast cases were taken, which never were, and what
silences, inhibition and escalation did (built by `oncall_queries`, drawn by `oncall_html`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UrgencyTakes:
    """One urgency's cases and takes in the window."""

    urgency: str
    alerted: int  # cases (messages) whose alert was sent in the window
    never_taken: int  # of those, cases nobody took (neither the case nor its incident) by the window's end
    taken: int  # takes in the window (by acked_at): cases and incidents
    p50_s: float | None  # time to acknowledge: the alert's delivery to the take
    p90_s: float | None
    sample: int  # how many takes the percentiles come from (the newest ones)


@dataclass(frozen=True)
class OnCall:
    urgencies: list[UrgencyTakes]  # most urgent first
    taken_by: dict[str, int]  # how (slack, zendesk) -> takes in the window
    silenced: int  # deliveries held by a silence in the window
    inhibited: int  # deliveries held by an inhibit rule in the window
    silences: dict[str, int]  # silence id -> deliveries it held, most first
    escalations: dict[str, int]  # sent, cancelled (taken in time), present (already sent there)
    escalated_to: dict[str, int]  # receiver -> escalations sent

    @property
    def alerted(self) -> int:
        return sum(u.alerted for u in self.urgencies)

    @property
    def never_taken(self) -> int:
        return sum(u.never_taken for u in self.urgencies)

    @property
    def taken(self) -> int:
        return sum(u.taken for u in self.urgencies)


def oncall_json(stats: OnCall) -> dict[str, Any]:
    """The report's `oncall` key (docs/report.md, "JSON keys")."""
    return {
        "alerted_cases": stats.alerted,
        "never_taken": stats.never_taken,
        "taken": stats.taken,
        "taken_by": stats.taken_by,
        "time_to_acknowledge_s": {
            u.urgency: {
                "p50": _rounded(u.p50_s),
                "p90": _rounded(u.p90_s),
                "count": u.taken,
                "sample": u.sample,
            }
            for u in stats.urgencies
        },
        "by_urgency": [
            {"urgency": u.urgency, "alerted": u.alerted, "never_taken": u.never_taken, "taken": u.taken}
            for u in stats.urgencies
        ],
        "silenced": stats.silenced,
        "inhibited": stats.inhibited,
        "silences": stats.silences,
        "escalations": stats.escalations,
        "escalated_to": stats.escalated_to,
    }


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
