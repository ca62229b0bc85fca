"""The CX scores of the report as plain data: survey scores (NPS, CSAT, CES), repeat contacts.

Definitions (docs/report.md, "CX scores"), over the survey answers given in the window:

- NPS: % promoters (9-10) minus % detractors (0-6) of the NPS answers (0-10), from -100 to 100;
- CSAT: % of the CSAT answers (1-5) that are 4 or 5 (satisfied), from 0 to 100;
- CES: the mean of the CES answers (1-7, 7: "the company made it easy"), from 1 to 7.

Built by `score_queries`, drawn by `score_html`, dumped into the JSON report by `scores_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SURVEYS = ("nps", "csat", "ces")
PROMOTER_FROM, DETRACTOR_UP_TO = 9, 6  # NPS
SATISFIED_FROM = 4  # CSAT
DIGITS = 4  # values in the JSON report are rounded to this many decimals


@dataclass(frozen=True)
class Answers:
    """How many answers of one survey gave each score."""

    by_score: Mapping[int, int]

    @property
    def count(self) -> int:
        return sum(self.by_score.values())

    def share(self, low: int, high: int) -> float:
        """The share (0 to 1) of answers scoring from low to high."""
        hits = sum(n for score, n in self.by_score.items() if low <= score <= high)
        return hits / self.count if self.count else 0.0

    def value(self, survey: str) -> float | None:
        """The survey's score over these answers (None: no answers)."""
        if not self.count:
            return None
        if survey == "nps":
            return 100 * (self.share(PROMOTER_FROM, 10) - self.share(0, DETRACTOR_UP_TO))
        if survey == "csat":
            return 100 * self.share(SATISFIED_FROM, 5)
        return sum(score * n for score, n in self.by_score.items()) / self.count


@dataclass(frozen=True)
class Score:
    """One survey's score over the window, per week (its Monday, UTC) and per channel."""

    survey: str
    answers: Answers
    by_week: dict[str, Answers]  # every week of the window, in order
    by_channel: dict[str, Answers]  # channels with answers, by name

    @property
    def value(self) -> float | None:
        return self.answers.value(self.survey)


@dataclass(frozen=True)
class RepeatCustomer:
    customer: str  # the customer id, else the customer key (a digest when the store keeps no text)
    contacts: int  # contacts in the window
    repeats: int  # of which came within REPEAT_WITHIN of the customer's previous contact
    channels: list[str]
    last_contact_at: datetime


@dataclass(frozen=True)
class RepeatContacts:
    """Contacts (messages that are not survey answers, from a known customer) in the window, and those
    that came within 7 days of the same customer's previous contact (which may be before the window)."""

    contacts: int
    repeats: int
    customers: list[RepeatCustomer]  # the customers with repeats, most first
    by_customer: dict[str, int] = field(default_factory=dict, repr=False)  # customer key -> repeats

    @property
    def rate(self) -> float | None:
        return self.repeats / self.contacts if self.contacts else None


@dataclass(frozen=True)
class CXScores:
    weeks: list[str]
    scores: dict[str, Score]  # nps, csat, ces
    repeat_contacts: RepeatContacts

    @property
    def answers(self) -> int:
        return sum(score.answers.count for score in self.scores.values())


def scores_json(cx: CXScores | None) -> dict[str, Any]:
    """The report's `scores`, `repeat_contact_rate` and `repeat_contacts` keys."""
    if cx is None:
        return {}
    repeat = cx.repeat_contacts
    return {
        "scores": {name: _score(score) for name, score in cx.scores.items()},
        "repeat_contact_rate": _rounded(repeat.rate),
        "repeat_contacts": {
            "contacts": repeat.contacts,
            "repeats": repeat.repeats,
            "customers": [
                {
                    "customer": customer.customer,
                    "contacts": customer.contacts,
                    "repeats": customer.repeats,
                    "channels": customer.channels,
                    "last_contact_at": customer.last_contact_at.astimezone(UTC)
                    .isoformat(timespec="seconds")
                    .replace("+00:00", "Z"),
                }
                for customer in repeat.customers
            ],
        },
    }


def _score(score: Score) -> dict[str, Any]:
    return {
        "value": _rounded(score.value),
        "count": score.answers.count,
        "by_week": [
            {"week": week, "value": _rounded(answers.value(score.survey)), "count": answers.count}
            for week, answers in score.by_week.items()
        ],
        "by_channel": {
            channel: {"value": _rounded(answers.value(score.survey)), "count": answers.count}
            for channel, answers in score.by_channel.items()
        },
    }


def _rounded(value: float | None) -> float | None:
    return round(value, DIGITS) if value is not None else None
