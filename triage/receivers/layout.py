"""What an alert says, whatever sends it: Slack, Teams, e-mail, a webhook, PagerDuty.

`Alert` is the channel-neutral content of one alert (built from a case's payload or from an incident):
plain text, nothing escaped and no markup. Each receiver renders it in its own format and escapes it by
its own rules (Slack's & < >, HTML for e-mail, Teams' `<at>`), so customer text never mentions anyone.
The payloads are already PII-masked by the pipeline (triage/pipeline.py, alert_details).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from triage.receivers.incident_view import IncidentView

KIND_PREFIX = {"new": "", "follow_up": "Follow-up: ", "escalation": "Escalated: "}
CONFIDENCE_WORDS = ((0.95, "certain"), (0.8, "very likely"), (0.6, "likely"), (0.0, "unsure"))
LANGUAGES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
    "pl": "Polish",
    "sv": "Swedish",
    "da": "Danish",
    "ja": "Japanese",
    "zh": "Chinese",
}
HTTP_URL = re.compile(r"^https?://[^\s|<>]+$")


@dataclass(frozen=True)
class Link:
    name: str  # what the fact is called: Ticket, Source
    label: str  # what the link says: Ticket 48211, acme.example
    url: str  # an http(s) URL, nothing else


@dataclass(frozen=True)
class Alert:
    """One alert in plain text: the headline an on-call reads first, then the rest in order."""

    headline: str  # `Escalated: URGENT · outage · Dana Whitfield (enterprise)`
    urgency: str
    category: str
    summary: str | None  # None when it would only repeat the message
    subject: str | None
    excerpt: str | None  # redacted, at most 500 characters
    facts: dict[str, str]  # name -> value, empty values left out (links are in `links`)
    why: str | None  # the route's matchers that held
    small_print: list[str]  # confidence as a number, the model, a degraded classifier
    links: list[Link] = field(default_factory=list)
    matchers: tuple[str, ...] = ()
    cases: list[tuple[str, str]] = field(default_factory=list)  # an incident's: (who · urgency, excerpt)
    correction: str | None = None  # `Ana set the urgency to urgent (the model said normal)`

    @property
    def text(self) -> str:
        """The notification line: headline and summary (what a push or a subject line shows)."""
        return f"{self.headline}: {self.summary}" if self.summary else self.headline


def case_alert(case: dict[str, Any], kind: str = "new") -> Alert:
    """A per-case alert (`kind`: new, follow_up or escalation)."""
    sentiment = case["sentiment"]
    facts = {
        "Sentiment": sentiment,
        "Confidence": confidence_word(case["confidence"]),
        "Language": language_line(case),
        "Channel": str(case.get("channel") or ""),
        **history_facts(case),
    }
    found = link(case)
    return Alert(
        headline=headline(case, kind),
        urgency=case["urgency"],
        category=str(case["category"]),
        summary=str(case["summary"]) if shows_summary(case) else None,
        subject=case.get("subject") or None,
        excerpt=case.get("excerpt") or None,
        facts={name: value for name, value in facts.items() if value},
        why=why(case),
        small_print=small_print(case),
        links=[found] if found else [],
        matchers=tuple(case.get("route_matchers") or ()),
        correction=correction(case),
    )


def incident_alert(view: IncidentView, escalation: dict[str, Any] | None = None) -> Alert:
    """An incident's alert (or its escalation by a more urgent case): how many cases and customers,
    since when, the highest urgency, up to three representative messages, why it was sent."""
    urgency = (escalation or {}).get("urgency") or view.urgency
    tiers = ", ".join(f"{count} {tier}" for tier, count in view.tiers.items())
    cases = []
    if escalation:
        said = f"More urgent case · {customer(escalation)} · {urgency}"
        cases.append((said, escalation.get("excerpt") or ""))
    cases += [(f"{customer(case)} · {case['urgency']}", case.get("excerpt") or "") for case in view.excerpts]
    first = view.excerpts[0] if view.excerpts else {}
    return Alert(
        headline=f"{incident_prefix(escalation)}: {urgency.upper()} · {view.category} · {view.count} cases",
        urgency=urgency,
        category=view.category,
        summary=f"{view.count} cases from {len(view.customers)} customers ({tiers})",
        subject=None,
        excerpt=None,
        facts={
            "Cases": str(view.count),
            "Customers": f"{len(view.customers)} ({tiers})",
            "First case": f"{view.first_at:%Y-%m-%d %H:%M:%S} UTC",
            "Latest case": f"{view.last_at:%Y-%m-%d %H:%M:%S} UTC",
            "Grouped by": view.key or "route",
        },
        why=why(first) if first else None,
        small_print=[f"incident {view.incident_id}"],
        matchers=tuple(first.get("route_matchers") or ()),
        cases=cases,
    )


def incident_prefix(escalation: dict[str, Any] | None) -> str:
    return "Escalated incident" if escalation else "Incident"


def headline(case: dict[str, Any], kind: str = "new") -> str:
    """`Escalated: URGENT · outage · Dana Whitfield (enterprise)`"""
    return f"{KIND_PREFIX[kind]}{case['urgency'].upper()} · {case['category']} · {customer(case)}"


def customer(case: dict[str, Any]) -> str:
    """`Dana Whitfield (enterprise)`, unescaped."""
    who = " ".join(str(case.get("customer_name") or case.get("customer_id") or "unknown customer").split())
    tier = case.get("customer_tier")
    return f"{who} ({tier})" if tier else who


def shows_summary(case: dict[str, Any]) -> bool:
    """A summary worth its line: not empty, not the subject, not a piece of the excerpt shown below
    (what a model that does not write summaries gives: the first sentence)."""
    said = _plain(case.get("summary")).rstrip("…").strip()
    return bool(said) and said != _plain(case.get("subject")) and said not in _plain(case.get("excerpt"))


def confidence_word(confidence: float) -> str:
    return next(word for floor, word in CONFIDENCE_WORDS if confidence >= floor)


def language_line(case: dict[str, Any]) -> str:
    """`Spanish, summary in English` when the LLM wrote it, `Spanish, summary as written` otherwise."""
    code = str(case.get("language") or "")
    if not code:
        return ""
    name = LANGUAGES.get(code.lower(), code)
    if code.lower() == "en" or not shows_summary(case):
        return name
    by_llm = str(case.get("model", "")).startswith("llm:") and not case.get("degraded")
    return f"{name}, summary {'in English' if by_llm else 'in the original language'}"


def link(case: dict[str, Any]) -> Link | None:
    """The ticket, else the message's source (metadata.url), else nothing; http(s) URLs only."""
    ticket = str(case.get("ticket_url") or "")
    if HTTP_URL.match(ticket):
        return Link("Ticket", f"Ticket {case.get('ticket_id') or ''}".strip(), ticket)
    source = str(case.get("source_url") or "")
    if HTTP_URL.match(source):
        return Link("Source", urlsplit(source).hostname or "source", source)
    return None


def why(
    case: dict[str, Any], code: Callable[[str], str] = str, text: Callable[[str], str] = str
) -> str | None:
    """The route's matchers that held: `urgency >= high and customer.tier = enterprise (route.routes[1]
    in the routing file)`. `code` renders a matcher, `text` the route's path (a receiver escapes)."""
    route = case.get("route")
    if route is None:  # stored before routes were recorded in the payload
        return None
    matchers = [code(matcher) for matcher in case.get("route_matchers") or []]
    if matchers:
        return f"{' and '.join(matchers)} ({text(route)} in the routing file)"
    if route == "route":
        return "no other route took this message (the routing file's default receiver)"
    return f"{text(route)} in the routing file takes every message"


def small_print(case: dict[str, Any]) -> list[str]:
    """The number behind the confidence word, the model, a fallback classifier."""
    parts = [f"confidence {case['confidence']:.0%}", f"model {case['model']}"]
    if case.get("degraded"):
        parts.append("fallback model: the LLM was unavailable")
    return parts


def correction(case: dict[str, Any]) -> str | None:
    """A case re-routed by a correction: `Ana set the urgency to urgent (the model said normal)`."""
    found = case.get("correction")
    if not isinstance(found, dict):
        return None
    return (
        f"{found.get('by')} set the {found.get('field')} to {found.get('value')} "
        f"(the model said {found.get('model')})"
    )


def _plain(text: Any) -> str:
    return " ".join(str(text or "").split()).lower()


CHANNEL_NAMES = {"email": "e-mail", "sms": "SMS"}


def history_facts(case: dict[str, Any]) -> dict[str, str]:
    """The customer's history (triage/history.py) in one line, and the earlier case about the same
    problem: `3rd contact in 24 h · e-mail, chat · mood worsening · 1 other urgent case this week`."""
    history = case.get("customer_history")
    if not isinstance(history, dict):
        return {}
    parts = []
    day, week = history.get("contacts_24h") or 1, history.get("contacts_7d") or 1
    if day > 1:
        parts.append(f"{ordinal(day)} contact in 24 h")
    elif week > 1:
        parts.append(f"{ordinal(week)} contact this week")
    elif not history.get("first_contact_days"):
        parts.append("first contact")
    channels = history.get("channels_7d") or []
    if len(channels) > 1:
        parts.append(", ".join(CHANNEL_NAMES.get(name, name) for name in channels))
    if history.get("sentiment_trend") in ("worsening", "improving"):
        parts.append(f"mood {history['sentiment_trend']}")
    if urgent := history.get("urgent_7d"):
        parts.append(f"{urgent} other urgent case{'s' if urgent > 1 else ''} this week")
    facts = {"Customer history": " · ".join(parts)} if parts else {}
    if earlier := history.get("earlier_case_id"):
        facts["Earlier case"] = f"{earlier} (same problem, this week)"
    return facts


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 22nd."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"
