"""The SQL of the CX scores (triage/report/scores.py) and of the at-risk list, on SQLite and PostgreSQL.

Survey answers belong to the window, a week and a channel by when they were given: the message's
`created_at`, else when it was received. The answers are read as a small cube (day, channel, survey,
score -> answers) that Python folds into the window's, the weeks' and the channels' scores, so every
figure is computed from the same counts.

A customer is `messages.customer_key` (triage/customers.py: one person across e-mail, chat and phone);
rows stored before customer keys existed fall back to `id:<customer.id>`, the key such a message
would get now. A contact is a message from a known customer that is not a survey answer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from triage.classify.survey import BANDS
from triage.message import URGENCY_ORDER
from triage.report.model import NO_CHANNEL, AtRiskCustomer, ChurnRisk
from triage.report.queries import RECEIVED_SLACK, _day, _in_window, _is, _triaged_in_window, _utc, monday
from triage.report.queries import week_labels as weeks_of
from triage.report.scores import SURVEYS, Answers, CXScores, RepeatContacts, RepeatCustomer, Score
from triage.report.window import Window
from triage.store.tables import MessageRow, TriageRow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REPEAT_WITHIN = timedelta(days=7)  # a contact this soon after the customer's previous one is a repeat
REPEATS_LISTED = 50  # customers listed under repeat contacts
AT_RISK_LISTED = 50  # customers listed at risk; the report also gives how many there are in all
NEGATIVE_REPEATS = 2  # this many negative messages in the window put a customer at risk
REPEATS_AT_RISK = 2  # so do this many repeat contacts
# Points of the at-risk ranking (docs/report.md, "At risk"): what the customer's history says.
WORSENING_POINTS, DETRACTOR_POINTS, ESCALATION_POINTS = 3, 3, 2  # repeats and negatives: 1 each
TIER_POINTS = {"enterprise": 2, "business": 1, "pro": 1}
SENTIMENT_RANK = {"negative": 0, "neutral": 1, "positive": 2}


def customer_key() -> ColumnElement[str]:
    return func.coalesce(MessageRow.customer_key, literal("id:") + MessageRow.customer_id)


def given_at() -> ColumnElement[datetime]:
    """When the customer wrote (or answered): created_at, else when the message was received."""
    return func.coalesce(MessageRow.created_at, MessageRow.received_at)


def is_detractor() -> ColumnElement[bool]:
    """A survey answer in its scale's negative band (NPS 0-6, CSAT 1-2, CES 1-3)."""
    return or_(
        *(
            and_(MessageRow.survey_type == survey, MessageRow.survey_score <= BANDS[survey][0])
            for survey in SURVEYS
        )
    )


def cx_scores(session: Session, window: Window) -> CXScores:
    weeks = weeks_of(window)
    cube = _answers(session, window)
    scores = {}
    for survey in SURVEYS:
        overall: dict[int, int] = defaultdict(int)
        by_week: dict[str, dict[int, int]] = {week: defaultdict(int) for week in weeks}
        by_channel: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for day, channel, kind, score, n in cube:
            if kind != survey:
                continue
            overall[score] += n
            by_week.setdefault(monday(day), defaultdict(int))[score] += n
            by_channel[channel or NO_CHANNEL][score] += n
        scores[survey] = Score(
            survey,
            Answers(dict(overall)),
            {week: Answers(dict(counts)) for week, counts in by_week.items()},
            {channel: Answers(dict(counts)) for channel, counts in sorted(by_channel.items())},
        )
    return CXScores(weeks, scores, repeat_contacts(session, window))


def _answers(session: Session, window: Window) -> list[tuple[str, str | None, str, int, int]]:
    """(day, channel, survey, score, answers) for the window's survey answers."""
    answered = given_at()
    day = _day(session, answered).label("day")
    query = (
        select(day, MessageRow.channel, MessageRow.survey_type, MessageRow.survey_score, func.count())
        .where(
            MessageRow.survey_type.in_(SURVEYS),  # the index's first column, then received_at
            MessageRow.received_at >= window.since - RECEIVED_SLACK,
            _in_window(answered, window),
        )
        .group_by("day", MessageRow.channel, MessageRow.survey_type, MessageRow.survey_score)
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def _gap_s(session: Session, later: ColumnElement[datetime], earlier: ColumnElement[datetime]):  # type: ignore[no-untyped-def]
    """Seconds from `earlier` to `later`."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400
    return func.extract("epoch", later - earlier)


def repeat_contacts(session: Session, window: Window) -> RepeatContacts:
    """Contacts given in the window, those within REPEAT_WITHIN of the same customer's previous contact
    (looked for up to REPEAT_WITHIN before the window), and the customers with repeats."""
    at = given_at()
    key = customer_key()
    contacts = (
        select(
            key.label("key"),
            MessageRow.customer_id.label("customer_id"),
            MessageRow.channel.label("channel"),
            at.label("at"),
            func.lag(at).over(partition_by=key, order_by=(at, MessageRow.id)).label("previous"),
        )
        .where(
            MessageRow.survey_type.is_(None),
            key.is_not(None),
            MessageRow.received_at >= window.since - REPEAT_WITHIN - RECEIVED_SLACK,
            at >= window.since - REPEAT_WITHIN,
            at <= window.until,
        )
        .subquery()
    )
    gap = _gap_s(session, contacts.c.at, contacts.c.previous)
    repeat = case((and_(contacts.c.previous.is_not(None), gap <= REPEAT_WITHIN.total_seconds()), 1), else_=0)
    query = (
        select(
            contacts.c.key,
            contacts.c.channel,
            func.max(contacts.c.customer_id),
            func.count(),
            func.sum(repeat),
            func.max(contacts.c.at),
        )
        .where(contacts.c.at >= window.since)
        .group_by(contacts.c.key, contacts.c.channel)
    )
    seen: dict[str, _Contacts] = {}
    for customer, channel, customer_id, n, repeats, last in session.execute(query):
        seen.setdefault(customer, _Contacts()).add(customer_id, channel, n, int(repeats or 0), _utc(last))
    listed = sorted(
        (item for item in seen.items() if item[1].repeats),
        key=lambda item: (-item[1].repeats, -item[1].last.timestamp(), item[0]),
    )
    return RepeatContacts(
        contacts=sum(found.contacts for found in seen.values()),
        repeats=sum(found.repeats for found in seen.values()),
        customers=[
            RepeatCustomer(
                found.customer_id or key, found.contacts, found.repeats, sorted(found.channels), found.last
            )
            for key, found in listed[:REPEATS_LISTED]
        ],
        by_customer={key: found.repeats for key, found in seen.items() if found.repeats},
    )


@dataclass
class _Contacts:
    """One customer's contacts in the window, summed over their channels."""

    customer_id: str | None = None
    contacts: int = 0
    repeats: int = 0
    last: datetime = EPOCH
    channels: list[str] = field(default_factory=list)

    def add(self, customer_id: str | None, channel: str | None, n: int, repeats: int, last: datetime) -> None:
        self.customer_id = self.customer_id or customer_id
        self.contacts += n
        self.repeats += repeats
        self.last = max(self.last, last)
        self.channels.append(channel or NO_CHANNEL)


def at_risk(session: Session, window: Window, repeat: RepeatContacts) -> ChurnRisk:
    """Customers whose history in the window says they may leave: NEGATIVE_REPEATS negative messages,
    an escalation (a conversation whose urgency rose), a detractor survey answer, a worsening mood, or
    REPEATS_AT_RISK repeat contacts. Ranked by points (see the constants), then the latest first."""
    level = case({name: rank for rank, name in enumerate(URGENCY_ORDER)}, value=TriageRow.urgency)
    previous = func.lag(level).over(
        partition_by=MessageRow.conversation_id, order_by=(TriageRow.triaged_at, MessageRow.id)
    )
    key = customer_key()
    mood = case(SENTIMENT_RANK, value=TriageRow.sentiment, else_=1)
    order = (TriageRow.triaged_at, MessageRow.id)
    per_message = (
        select(
            key.label("key"),
            MessageRow.customer_id.label("customer_id"),
            MessageRow.customer_tier.label("tier"),
            TriageRow.triaged_at.label("at"),
            _is(TriageRow.sentiment == "negative").label("negative"),
            _is(level > previous).label("escalation"),
            _is(is_detractor()).label("detractor"),
            mood.label("mood"),
            TriageRow.customer_history["sentiment_trend"].as_string().label("trend"),
            func.row_number().over(partition_by=key, order_by=order).label("first"),
            func.row_number()
            .over(partition_by=key, order_by=(TriageRow.triaged_at.desc(), MessageRow.id.desc()))
            .label("last"),
        )
        .join_from(TriageRow, MessageRow, MessageRow.id == TriageRow.message_id)
        .where(_triaged_in_window(window))
        .subquery()
    )
    c = per_message.c
    newest = c["last"] == 1
    query = (
        select(
            c.key,
            func.max(c.customer_id),
            func.max(case((newest, c.tier))),
            func.count(),
            func.sum(c.negative),
            func.sum(c.escalation),
            func.sum(c.detractor),
            func.max(case((newest, c.trend))),
            func.max(case((c["first"] == 1, c.mood))),
            func.max(case((newest, c.mood))),
            func.max(c.at),
        )
        .where(c.key.is_not(None))
        .group_by(c.key)
    )
    repeats = repeat.by_customer
    customers = []
    for (
        key_,
        customer_id,
        tier,
        n,
        negative,
        escalations,
        detractors,
        trend,
        first,
        last,
        at,
    ) in session.execute(query):
        # the stored history's trend; without one (history off, older rows), the first and last mood
        worsening = trend == "worsening" if trend else (n > 1 and last < first)
        repeat = repeats.get(key_, 0)
        if not (
            negative >= NEGATIVE_REPEATS
            or escalations
            or detractors
            or worsening
            or repeat >= REPEATS_AT_RISK
        ):
            continue
        points = (
            WORSENING_POINTS * worsening
            + DETRACTOR_POINTS * detractors
            + ESCALATION_POINTS * escalations
            + repeat
            + negative
            + TIER_POINTS.get((tier or "").lower(), 0)
        )
        customers.append(
            AtRiskCustomer(
                customer_id or key_,
                tier,
                n,
                negative,
                escalations,
                _utc(at),
                repeats=repeat,
                detractors=detractors,
                worsening=worsening,
                risk=points,
            )
        )
    customers.sort(key=lambda found: (-found.risk, -found.last_message_at.timestamp(), found.customer_id))
    return ChurnRisk(total=len(customers), customers=customers[:AT_RISK_LISTED])
