"""The on-call section's SQL: GROUP BYs in the database, the same statements on SQLite and PostgreSQL.

A case belongs to the window when one of its alerts (a delivery to a receiver other than the results
topic) was sent and created in it; it counts as taken when someone took it or its incident, whenever
that was (by the window's end). Takes belong to the window by `acked_at`; silenced and inhibited
deliveries by `created_at`; escalations by `decided_at`.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from triage.report.model import URGENCIES
from triage.report.oncall import OnCall, UrgencyTakes
from triage.report.queries import _in_window, _utc, percentile
from triage.report.window import Window
from triage.routing import RESULTS_RECEIVER
from triage.store.tables import AcknowledgementRow, DeliveryRow, EscalationRow, TriageRow

TAKES_SAMPLE = 10_000  # newest takes per urgency the percentiles are computed from
SILENCE_PREFIX = "silence "  # a silenced delivery's detail: `silence <id>`


def oncall(session: Session, window: Window) -> OnCall:
    alerted = _alerted_cases(session, window, only_untaken=False)
    untaken = _alerted_cases(session, window, only_untaken=True)
    taken, taken_by = _takes(session, window)
    times = {urgency: _take_times(session, window, urgency) for urgency in taken}
    held: dict[str, int] = defaultdict(int)
    silences: dict[str, int] = defaultdict(int)
    query = (
        select(DeliveryRow.status, DeliveryRow.detail, func.count())
        .where(DeliveryRow.status.in_(("silenced", "inhibited")), _in_window(DeliveryRow.created_at, window))
        .group_by(DeliveryRow.status, DeliveryRow.detail)
    )
    for status, detail, n in session.execute(query):
        held[status] += n
        if status == "silenced" and (detail or "").startswith(SILENCE_PREFIX):
            silences[detail.removeprefix(SILENCE_PREFIX)] += n
    escalations: dict[str, int] = defaultdict(int)
    escalated_to: dict[str, int] = defaultdict(int)
    query = (
        select(EscalationRow.status, EscalationRow.receiver, func.count())
        .where(_in_window(EscalationRow.decided_at, window))
        .group_by(EscalationRow.status, EscalationRow.receiver)
    )
    for status, receiver, n in session.execute(query):
        escalations[status] += n
        if status == "sent":
            escalated_to[receiver] += n
    known = set(alerted) | set(taken)
    order = [u for u in reversed(URGENCIES) if u in known] + sorted(known - set(URGENCIES))
    return OnCall(
        urgencies=[
            UrgencyTakes(
                urgency=urgency,
                alerted=alerted.get(urgency, 0),
                never_taken=untaken.get(urgency, 0),
                taken=taken.get(urgency, 0),
                p50_s=percentile(times.get(urgency, []), 0.50),
                p90_s=percentile(times.get(urgency, []), 0.90),
                sample=len(times.get(urgency, [])),
            )
            for urgency in order
        ],
        taken_by=dict(sorted(taken_by.items())),
        silenced=held["silenced"],
        inhibited=held["inhibited"],
        silences=dict(sorted(silences.items(), key=lambda kv: (-kv[1], kv[0]))),
        escalations=dict(sorted(escalations.items())),
        escalated_to=dict(sorted(escalated_to.items())),
    )


def _alerted_cases(session: Session, window: Window, *, only_untaken: bool) -> dict[str, int]:
    """Cases alerted in the window per urgency (the case's own); with only_untaken, those nobody took."""
    conditions = [
        DeliveryRow.receiver != RESULTS_RECEIVER,
        DeliveryRow.status == "sent",
        _in_window(DeliveryRow.created_at, window),
    ]
    if only_untaken:
        grouped = aliased(DeliveryRow)
        case_taken = exists().where(AcknowledgementRow.message_id == DeliveryRow.message_id)
        incident_taken = exists().where(
            and_(
                grouped.message_id == DeliveryRow.message_id,
                grouped.incident_id.is_not(None),
                AcknowledgementRow.incident_id == grouped.incident_id,
            )
        )
        conditions += [~case_taken, ~incident_taken]
    query = (
        select(TriageRow.urgency, func.count(func.distinct(DeliveryRow.message_id)))
        .join_from(DeliveryRow, TriageRow, TriageRow.message_id == DeliveryRow.message_id)
        .where(*conditions)
        .group_by(TriageRow.urgency)
    )
    return {urgency: n for urgency, n in session.execute(query)}


def _takes(session: Session, window: Window) -> tuple[dict[str, int], dict[str, int]]:
    """Takes in the window per urgency (unknown when the alert's urgency was not stored) and per how."""
    urgency = func.coalesce(AcknowledgementRow.urgency, "unknown").label("urgency")
    query = (
        select(urgency, AcknowledgementRow.how, func.count())
        .where(_in_window(AcknowledgementRow.acked_at, window))
        .group_by("urgency", AcknowledgementRow.how)
    )
    by_urgency: dict[str, int] = defaultdict(int)
    by_how: dict[str, int] = defaultdict(int)
    for level, how, n in session.execute(query):
        by_urgency[level] += n
        by_how[how] += n
    return dict(by_urgency), dict(by_how)


def _take_times(session: Session, window: Window, urgency: str) -> list[float]:
    """Seconds from the alert's delivery to the take, for the urgency's newest TAKES_SAMPLE takes with a
    known delivery time; sorted."""
    level = AcknowledgementRow.urgency
    query = (
        select(AcknowledgementRow.alerted_at, AcknowledgementRow.acked_at)
        .where(
            _in_window(AcknowledgementRow.acked_at, window),
            AcknowledgementRow.alerted_at.is_not(None),
            level.is_(None) if urgency == "unknown" else level == urgency,
        )
        .order_by(AcknowledgementRow.acked_at.desc())
        .limit(TAKES_SAMPLE)
    )
    return sorted(
        max(0.0, (_utc(acked) - _utc(alerted)).total_seconds()) for alerted, acked in session.execute(query)
    )
