"""The report's "CX scores" section: NPS, CSAT and CES by week and by channel beside the share of
negative messages, the repeat-contact rate and the customers who came back within 7 days."""

from __future__ import annotations

from collections import defaultdict
from html import escape

from triage.report.html import SENTIMENT_COLORS, _section, _table, _when, counted
from triage.report.model import Report
from triage.report.queries import monday
from triage.report.scores import Answers, CXScores, Score
from triage.report.svg import Segment, columns, count, legend, share

NAMES = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}
# each survey's bands (classify/survey.py's), drawn per week: negative, neutral, positive
BANDS = {
    "nps": (("detractors 0-6", 0, 6), ("passives 7-8", 7, 8), ("promoters 9-10", 9, 10)),
    "csat": (("1-2", 1, 2), ("3", 3, 3), ("satisfied 4-5", 4, 5)),
    "ces": (("1-3", 1, 3), ("4", 4, 4), ("easy 5-7", 5, 7)),
}
BAND_COLORS = (SENTIMENT_COLORS["negative"], SENTIMENT_COLORS["neutral"], SENTIMENT_COLORS["positive"])


def score_section(report: Report) -> str:
    cx = report.cx
    if cx is None:
        return ""
    repeat = cx.repeat_contacts
    rate = f"{share(repeat.rate)}" if repeat.rate is not None else "–"
    intro = (
        f"{counted(cx.answers, 'survey answer')} in the window. NPS: % promoters (9-10) minus % "
        "detractors (0-6); CSAT: % of answers 4 or 5; CES: the mean answer (1-7, 7 is easiest). "
        f"Repeat contacts: {rate} of {counted(repeat.contacts, 'contact')} came within 7 days of the "
        "same customer's previous one."
    )
    tiles = "".join(
        f'<div class="tile"><b>{_value(score.survey, score.answers)}</b>{NAMES[name]}'
        f"<small>{counted(score.answers.count, 'answer')}</small></div>"
        for name, score in cx.scores.items()
    )
    repeats = f"{count(repeat.repeats)} of {count(repeat.contacts)}"
    tiles += f'<div class="tile"><b>{rate}</b>repeat contacts<small>{repeats}</small></div>'
    parts = [f'<div class="tiles">{tiles}</div>', _by_week(report, cx), _by_channel(report, cx)]
    parts += [_bands(cx, score) for score in cx.scores.values() if score.answers.count]
    parts.append(_repeaters(cx))
    return _section("CX scores", intro, *parts)


def _value(survey: str, answers: Answers) -> str:
    value = answers.value(survey)
    if value is None:
        return "–"
    if survey == "ces":
        return f"{value:.2f}"
    return (f"{value:+.0f}" if round(value) else "0") if survey == "nps" else f"{value:.0f}%"


def _cell(score: Score, answers: Answers | None) -> str:
    if answers is None or not answers.count:
        return "–"
    return f"{_value(score.survey, answers)} ({count(answers.count)})"


def _by_week(report: Report, cx: CXScores) -> str:
    """Scores per week beside the share of negative messages that week."""
    activity = report.activity
    negative: dict[str, int] = defaultdict(int)
    messages: dict[str, int] = defaultdict(int)
    for bucket, n in zip(activity.buckets, activity.messages, strict=True):
        messages[monday(bucket[:10])] += n
    for series in activity.sentiment_by_channel.values():
        for bucket, n in zip(activity.buckets, series.get("negative", ()), strict=False):
            negative[monday(bucket[:10])] += n
    rows = [
        (
            week,
            *(_cell(score, score.by_week.get(week)) for score in cx.scores.values()),
            share(negative[week] / messages[week]) if messages[week] else "–",
        )
        for week in cx.weeks
    ]
    header = ("week (Monday, UTC)", *(f"{NAMES[name]} (answers)" for name in cx.scores), "negative messages")
    return "<h3>By week</h3>" + _table(header, rows)


def _by_channel(report: Report, cx: CXScores) -> str:
    """Scores per channel beside the share of the channel's negative messages."""
    channels = sorted({channel for score in cx.scores.values() for channel in score.by_channel})
    rows = []
    for channel in channels:
        series = report.activity.sentiment_by_channel.get(channel, {})
        total = sum(map(sum, series.values()))
        rows.append(
            (
                channel,
                *(_cell(score, score.by_channel.get(channel)) for score in cx.scores.values()),
                share(sum(series.get("negative", ())) / total) if total else "–",
            )
        )
    header = ("channel", *(f"{NAMES[name]} (answers)" for name in cx.scores), "negative messages")
    return "<h3>By channel</h3>" + (_table(header, rows) if rows else "<p class=muted>No survey answers.</p>")


def _bands(cx: CXScores, score: Score) -> str:
    """The week's answers by band: detractors, passives and promoters for NPS, and so on."""
    segments = [
        Segment(name, [_between(score.by_week[week], low, high) for week in cx.weeks], color)
        for (name, low, high), color in zip(BANDS[score.survey], BAND_COLORS, strict=True)
    ]
    return (
        f"<h3>{escape(NAMES[score.survey])} answers per week</h3>"
        + legend(segments)
        + columns(cx.weeks, segments, percent=True, height=120)
    )


def _between(answers: Answers, low: int, high: int) -> int:
    return sum(n for score, n in answers.by_score.items() if low <= score <= high)


def _repeaters(cx: CXScores) -> str:
    customers = cx.repeat_contacts.customers
    if not customers:
        return ""
    table = _table(
        ("customer", "channels", "contacts", "repeats", "last contact (UTC)"),
        (
            (
                found.customer,
                ", ".join(found.channels),
                count(found.contacts),
                count(found.repeats),
                _when(found.last_contact_at),
            )
            for found in customers
        ),
        text_columns=2,
    )
    return "<h3>Repeat contacts</h3>" + table
