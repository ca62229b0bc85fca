"""The report's on-call section: time to acknowledge by urgency, cases never taken, what silences and
inhibit rules held back, and escalations."""

from __future__ import annotations

from html import escape

from triage.report.html import _section, _table, counted, seconds
from triage.report.oncall import OnCall
from triage.report.svg import count


def oncall_section(stats: OnCall | None) -> str:
    if stats is None:
        return ""
    if not (stats.alerted or stats.taken or stats.silenced or stats.inhibited or stats.escalations):
        return _section("On call", "No alerts, takes, silences or escalations in the window.")
    intro = (
        f"{counted(stats.alerted, 'case')} alerted, {count(stats.never_taken)} never taken "
        f"(neither the case nor its incident); {counted(stats.taken, 'take')} in the window"
        + (f" ({_joined(stats.taken_by)})" if stats.taken_by else "")
        + ". Time to acknowledge runs from the alert's delivery to the take."
    )
    takes = _table(
        ("urgency", "cases alerted", "never taken", "takes", "p50", "p90", "takes timed"),
        (
            (
                u.urgency,
                count(u.alerted),
                count(u.never_taken),
                count(u.taken),
                seconds(u.p50_s),
                seconds(u.p90_s),
                count(u.sample),
            )
            for u in stats.urgencies
        ),
    )
    held = escape(
        f"Deliveries held back: {count(stats.silenced)} silenced, {count(stats.inhibited)} inhibited. "
        f"Escalations: {_joined(stats.escalations) or 'none'}"
        + (f" (sent to {_joined(stats.escalated_to)})" if stats.escalated_to else "")
        + "."
    )
    silences = (
        "<h3>Silences</h3>"
        + _table(("silence", "deliveries held"), ((sid, count(n)) for sid, n in stats.silences.items()))
        if stats.silences
        else ""
    )
    return _section("On call", intro, takes, f"<p>{held}</p>", silences)


def _joined(counts: dict[str, int]) -> str:
    return ", ".join(f"{count(n)} {name}" for name, n in counts.items())
