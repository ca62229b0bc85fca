"""The report's SQL: every aggregate is a GROUP BY in the database, the same statements on SQLite and
PostgreSQL, so a store of a million messages is never loaded into Python.

A message belongs to the window by `triage_results.triaged_at` (indexed; written in the same transaction
as the message, so it is when triage handled it). Alerts belong to it by `deliveries.created_at`, which
is the same moment. Queries that join `messages` also bound its `received_at` (a message is received
moments before it is triaged; RECEIVED_SLACK is far wider), which changes no result but lets the
database narrow both sides of the join by index instead of reading every stored message.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Label, and_, case, func, select
from sqlalchemy.orm import Session

from triage.feedback.fields import FIELDS
from triage.report.model import (
    NO_CHANNEL,
    SENTIMENTS,
    URGENCIES,
    Activity,
    CategoryStat,
    CorrectedCategory,
    IncidentStat,
    LLMSpend,
    ModelVsTeam,
    ReceiverStat,
    Report,
)
from triage.report.window import DAY_FORMAT, HOUR_FORMAT, Window
from triage.routing import RESULTS_RECEIVER
from triage.store.tables import DeliveryRow, IncidentRow, LabelRow, MessageRow, TriageRow

INCIDENTS_LISTED = 50
CORRECTED_LISTED = 10  # categories listed under "most corrected"
AT_RISK_LISTED = 50  # customers listed; the report also gives how many there are in all
LATENCY_SAMPLE = 10_000  # newest sent alerts per receiver the percentiles are computed from
NEGATIVE_REPEATS = 2  # this many negative messages in the window put a customer at risk
RECEIVED_SLACK = timedelta(days=1)


def build_report(
    session: Session, window: Window, daily_budget_usd: float | None = None, oncall_section: bool = True
) -> Report:
    """The whole report; `oncall_section=False` leaves out the on-call figures, whose tables (takes,
    escalations, silences) the warehouse does not hold."""
    from triage.report.oncall_queries import oncall  # they build on this module's helpers
    from triage.report.score_queries import at_risk, cx_scores

    cx = cx_scores(session, window)
    return Report(
        window=window,
        activity=activity(session, window),
        categories=categories(session, window),
        churn_risk=at_risk(session, window, cx.repeat_contacts),
        alerts=alerts(session, window),
        incidents=incidents(session, window),
        model_vs_team=model_vs_team(session, window),
        llm_spend=llm_spend(session, window, daily_budget_usd),
        oncall=oncall(session, window) if oncall_section else None,
        cx=cx,
    )


def _bucket(session: Session, window: Window, column: ColumnElement[datetime]) -> ColumnElement[str]:
    """The UTC day (or hour) of a timestamp as text, spelled like `Window.label`."""
    if session.get_bind().dialect.name == "sqlite":  # SQLAlchemy stores UTC text there
        return func.strftime(HOUR_FORMAT if window.hourly else DAY_FORMAT, column)
    pattern = 'YYYY-MM-DD"T"HH24:00' if window.hourly else "YYYY-MM-DD"
    return func.to_char(func.timezone("UTC", column), pattern)


def _in_window(column: ColumnElement[datetime], window: Window) -> ColumnElement[bool]:
    return and_(column >= window.since, column <= window.until)


def _triaged_in_window(window: Window) -> ColumnElement[bool]:
    """For queries joining messages to triage_results (see the module's docstring)."""
    return and_(
        _in_window(TriageRow.triaged_at, window),
        MessageRow.received_at >= window.since - RECEIVED_SLACK,
        MessageRow.received_at <= window.until,
    )


def activity(session: Session, window: Window) -> Activity:
    """The per-bucket series, from one pass over the window's messages grouped into a small cube."""
    buckets = window.labels()
    bucket = _bucket(session, window, TriageRow.triaged_at).label("bucket")
    query = (
        select(
            bucket,
            MessageRow.channel,
            TriageRow.sentiment,
            TriageRow.urgency,
            TriageRow.degraded,
            func.count(),
            func.sum(TriageRow.prompt_tokens),
            func.sum(TriageRow.completion_tokens),
            func.sum(TriageRow.cost_usd),
        )
        .join_from(TriageRow, MessageRow, MessageRow.id == TriageRow.message_id)
        .where(_triaged_in_window(window))
        .group_by("bucket", MessageRow.channel, TriageRow.sentiment, TriageRow.urgency, TriageRow.degraded)
    )
    index = {label: i for i, label in enumerate(buckets)}
    zeros = [0] * len(buckets)
    messages, degraded, prompt, completion = list(zeros), list(zeros), list(zeros), list(zeros)
    cost = [0.0] * len(buckets)
    urgency = {level: list(zeros) for level in URGENCIES}
    by_channel: dict[str, dict[str, list[int]]] = defaultdict(lambda: {s: list(zeros) for s in SENTIMENTS})
    rows = session.execute(query)
    for label, channel, sentiment, level, is_degraded, count, p_tokens, c_tokens, usd in rows:
        i = index[label]
        messages[i] += count
        degraded[i] += count if is_degraded else 0
        prompt[i] += p_tokens or 0
        completion[i] += c_tokens or 0
        cost[i] += usd or 0.0
        urgency.setdefault(level, list(zeros))[i] += count
        by_channel[channel or NO_CHANNEL].setdefault(sentiment, list(zeros))[i] += count
    return Activity(
        buckets=buckets,
        messages=messages,
        sentiment_by_channel=dict(sorted(by_channel.items())),
        urgency=urgency,
        degraded=degraded,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
    )


def categories(session: Session, window: Window) -> list[CategoryStat]:
    """Categories by volume (most first), each with its count of negative messages."""
    count = func.count()
    query = (
        select(TriageRow.category, count, func.sum(_is(TriageRow.sentiment == "negative")))
        .where(_in_window(TriageRow.triaged_at, window))
        .group_by(TriageRow.category)
        .order_by(count.desc(), TriageRow.category)
    )
    return [
        CategoryStat(category, messages, negative) for category, messages, negative in session.execute(query)
    ]


def _is(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def alerts(session: Session, window: Window) -> list[ReceiverStat]:
    """Per receiver (the internal results topic left out): deliveries by status, why the skipped ones
    were skipped, and time to alert."""
    query = (
        select(DeliveryRow.receiver, DeliveryRow.status, func.count())
        .where(DeliveryRow.receiver != RESULTS_RECEIVER, _in_window(DeliveryRow.created_at, window))
        .group_by(DeliveryRow.receiver, DeliveryRow.status)
    )
    statuses: dict[str, dict[str, int]] = defaultdict(dict)
    for receiver, status, count in session.execute(query):
        statuses[receiver][status] = count
    skipped = _skip_reasons(session, window) if any("skipped" in s for s in statuses.values()) else {}
    stats = []
    for receiver, counts in sorted(statuses.items()):
        latencies = _latencies(session, window, receiver) if counts.get("sent") else []
        stats.append(
            ReceiverStat(
                receiver=receiver,
                statuses=dict(sorted(counts.items())),
                latency_p50_s=percentile(latencies, 0.50),
                latency_p95_s=percentile(latencies, 0.95),
                latency_sample=len(latencies),
                skipped=skipped.get(receiver, {}),
            )
        )
    return stats


def _skip_reasons(session: Session, window: Window) -> dict[str, dict[str, int]]:
    """Per receiver, the reasons its skipped deliveries in the window give (`detail`), most first. A query
    of its own: the counts above come from the index alone, which has no `detail`."""
    count = func.count()
    query = (
        select(DeliveryRow.receiver, DeliveryRow.detail, count)
        .where(
            DeliveryRow.receiver != RESULTS_RECEIVER,
            DeliveryRow.status == "skipped",
            _in_window(DeliveryRow.created_at, window),
        )
        .group_by(DeliveryRow.receiver, DeliveryRow.detail)
        .order_by(DeliveryRow.receiver, count.desc(), DeliveryRow.detail)
    )
    reasons: dict[str, dict[str, int]] = defaultdict(dict)
    for receiver, detail, n in session.execute(query):
        reasons[receiver][detail or "no reason given"] = n
    return reasons


def _latencies(session: Session, window: Window, receiver: str) -> list[float]:
    """Seconds from each message's creation (its received_at when it gave none) to its alert going out,
    for the receiver's newest LATENCY_SAMPLE sent alerts in the window; sorted."""
    query = (
        select(DeliveryRow.sent_at, MessageRow.created_at, MessageRow.received_at)
        .join_from(DeliveryRow, MessageRow, MessageRow.id == DeliveryRow.message_id)
        .where(
            DeliveryRow.receiver == receiver,
            DeliveryRow.status == "sent",
            DeliveryRow.sent_at.is_not(None),
            _in_window(DeliveryRow.created_at, window),
        )
        .order_by(DeliveryRow.created_at.desc())
        .limit(LATENCY_SAMPLE)
    )
    return sorted(
        (_utc(sent) - _utc(created or received)).total_seconds()
        for sent, created, received in session.execute(query)
    )


def incidents(session: Session, window: Window) -> list[IncidentStat]:
    """Incidents with a case in the window, the newest first (at most INCIDENTS_LISTED)."""
    rows = session.scalars(
        select(IncidentRow)
        .where(IncidentRow.last_case_at >= window.since, IncidentRow.first_case_at < window.until)
        .order_by(IncidentRow.last_case_at.desc())
        .limit(INCIDENTS_LISTED)
    ).all()
    ids = [row.id for row in rows]
    customers = dict(
        session.execute(
            select(DeliveryRow.incident_id, func.count(func.distinct(MessageRow.customer_id)))
            .join_from(DeliveryRow, MessageRow, MessageRow.id == DeliveryRow.message_id)
            .where(DeliveryRow.incident_id.in_(ids))
            .group_by(DeliveryRow.incident_id)
        ).all()
    )
    first_cases = dict(
        session.execute(
            select(DeliveryRow.incident_id, DeliveryRow.payload).where(
                DeliveryRow.incident_id.in_(ids), DeliveryRow.incident_seq == 1
            )
        ).all()
    )
    now = window.until
    return [
        IncidentStat(
            receiver=row.receiver,
            key=readable_key(row.group_key),
            summary=str((first_cases.get(row.id) or {}).get("summary") or ""),
            cases=row.case_count,
            customers=customers.get(row.id, 0),
            top_urgency=row.top_urgency,
            first_case_at=_utc(row.first_case_at),
            last_case_at=_utc(row.last_case_at),
            open=_utc(row.closes_at) > now,
            slack_ts=row.slack_ts,
            problem_ticket_id=row.problem_ticket_id,
        )
        for row in rows
    ]


def model_vs_team(session: Session, window: Window) -> ModelVsTeam:
    """The team's labels given in the window (by labelled_at), per week and field, by source, and by
    the model's category of the labelled messages."""
    weeks = week_labels(window)
    index = {week: i for i, week in enumerate(weeks)}
    labels = {field: [0] * len(weeks) for field in FIELDS}
    corrections = {field: [0] * len(weeks) for field in FIELDS}
    sources: dict[str, int] = defaultdict(int)
    day = _day(session, LabelRow.labelled_at).label("day")
    query = (
        select(day, LabelRow.field, LabelRow.source, _corrected(), func.count())
        .where(_in_window(LabelRow.labelled_at, window))
        .group_by("day", LabelRow.field, LabelRow.source, "corrected")
    )
    for label_day, field, source, is_correction, count in session.execute(query):
        week = index[monday(label_day)]
        labels.setdefault(field, [0] * len(weeks))[week] += count
        corrections.setdefault(field, [0] * len(weeks))[week] += count * is_correction
        sources[source] += count
    return ModelVsTeam(
        weeks, labels, corrections, dict(sorted(sources.items())), _corrected_categories(session, window)
    )


def _corrected_categories(session: Session, window: Window) -> list[CorrectedCategory]:
    """The model's categories whose messages people corrected most (at most CORRECTED_LISTED)."""
    query = (
        select(TriageRow.category, LabelRow.field, LabelRow.team_value, _corrected(), func.count())
        .join_from(LabelRow, TriageRow, TriageRow.message_id == LabelRow.message_id)
        .where(_in_window(LabelRow.labelled_at, window))
        .group_by(TriageRow.category, LabelRow.field, LabelRow.team_value, "corrected")
    )
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    moved: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for category, field, team_value, is_correction, count in session.execute(query):
        totals[category][0] += count
        totals[category][1] += count * is_correction
        if field == "category" and is_correction:
            moved[category][team_value] += count
    ranked = sorted(
        (item for item in totals.items() if item[1][1]), key=lambda item: (-item[1][1], -item[1][0], item[0])
    )
    return [
        CorrectedCategory(
            category,
            labelled,
            corrected_count,
            dict(sorted(moved[category].items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for category, (labelled, corrected_count) in ranked[:CORRECTED_LISTED]
    ]


def _corrected() -> Label[int]:
    """1 for a label that differs from the model's value, 0 for one that agrees (grouped by name)."""
    return _is(LabelRow.team_value != LabelRow.model_value).label("corrected")


def llm_spend(session: Session, window: Window, daily_budget_usd: float | None) -> LLMSpend:
    """LLM cost per UTC day of the window (whole days: the cap is per day)."""
    first, last = window.since.astimezone(UTC).date(), window.until.astimezone(UTC).date()
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    day = _day(session, TriageRow.triaged_at).label("day")
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    query = (
        select(day, func.sum(TriageRow.cost_usd))
        .where(TriageRow.triaged_at >= start, TriageRow.triaged_at <= window.until)
        .group_by("day")
    )
    spent = {label: float(usd or 0.0) for label, usd in session.execute(query)}
    return LLMSpend(days, [spent.get(d, 0.0) for d in days], daily_budget_usd)


def _day(session: Session, column: ColumnElement[datetime]) -> ColumnElement[str]:
    """The UTC day of a timestamp as text (YYYY-MM-DD)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime(DAY_FORMAT, column)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")


def monday(day: str) -> str:
    """The Monday of a day's ISO week: `2026-11-20` -> `2026-11-16`."""
    moment = datetime.strptime(day, DAY_FORMAT)
    return (moment - timedelta(days=moment.weekday())).strftime(DAY_FORMAT)


def week_labels(window: Window) -> list[str]:
    """The Monday of every week the window touches."""
    first = datetime.strptime(monday(window.since.astimezone(UTC).strftime(DAY_FORMAT)), DAY_FORMAT)
    weeks = []
    while first <= window.until.astimezone(UTC).replace(tzinfo=None):
        weeks.append(first.strftime(DAY_FORMAT))
        first += timedelta(days=7)
    return weeks


def readable_key(group_key: str) -> str:
    """`route.routes[1] {"category": "outage"}` -> `category=outage`."""
    _, _, values = group_key.partition(" ")
    try:
        fields = json.loads(values)
    except ValueError:
        return group_key
    return ", ".join(f"{name}={value}" for name, value in fields.items()) or "(everything)"


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont); None for no values."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the store writes UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
