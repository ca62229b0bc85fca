"""The report's on-call section, exact on SQLite and PostgreSQL: time to acknowledge by urgency, cases
never taken, silenced and inhibited deliveries, escalations (fill_oncall documents the rows)."""

from datetime import UTC, datetime, timedelta
from html import escape

from sqlalchemy import select, update

from tests.report.conftest import WEEK, add, at
from triage.oncall.acks import Target, take
from triage.report.html import render_html
from triage.report.model import as_json
from triage.report.oncall_queries import oncall
from triage.report.queries import build_report
from triage.store import Store
from triage.store.tables import DeliveryRow, EscalationRow, IncidentRow

SENT = at(18, 10)  # every alert below is created then and sent 5 s after its message


def fill_oncall(store: Store) -> None:
    """Cases in WEEK (13 Nov 12:00 to 20 Nov 12:00 UTC) and what became of their alerts."""

    def case(message_id: str, urgency: str, alerts: dict, triaged: datetime = SENT) -> None:
        add(store, message_id, triaged, customer=f"cust-{message_id}", conversation=f"conv-{message_id}",
            urgency=urgency, created=triaged, alerts=alerts)  # fmt: skip

    sent = ("sent", 5.0)
    case("h1", "high", {"oncall": sent})  # taken in Slack 60 s after its alert
    case("h2", "high", {"oncall": sent})  # taken in Zendesk (assigned) after 300 s
    case("h3", "high", {"oncall": sent, "lead": sent})  # never taken; escalated to lead: one case
    case("u1", "urgent", {"oncall": sent, "pager": sent})  # taken after 30 s (its first alert)
    case("u2", "urgent", {"oncall": sent})  # its incident taken after 120 s: the case is taken
    case("u3", "urgent", {"oncall": ("silenced", None)})  # held back: not an alerted case
    case("u4", "urgent", {"oncall": ("pending", None)})  # not sent yet: not an alerted case
    case("n1", "normal", {"oncall": ("inhibited", None)})
    case("n2", "normal", {"oncall": ("silenced", None)})
    case("n3", "normal", {"oncall": ("silenced", None)})
    case("old", "high", {"oncall": sent}, triaged=at(1, 9))  # before the window: counts nowhere
    with store.session() as session:
        ids = {
            (message, receiver): delivery_id
            for delivery_id, message, receiver in session.execute(
                select(DeliveryRow.id, DeliveryRow.message_id, DeliveryRow.receiver)
            )
        }
        incident = IncidentRow(uid="inc1", receiver="oncall", group_key='route {"category": "billing"}',
            mode="alert", first_case_at=SENT, last_case_at=SENT, closes_at=SENT + timedelta(minutes=10),
            top_urgency="urgent", interval_s=300, opener_id=ids["u2", "oncall"])  # fmt: skip
        session.add(incident)
        session.flush()
        session.execute(
            update(DeliveryRow).where(DeliveryRow.id == ids["u2", "oncall"]).values(incident_id=incident.id)
        )
        for message, detail in (("u3", "silence s1"), ("n2", "silence s1"), ("n3", "silence s2")):
            session.execute(
                update(DeliveryRow).where(DeliveryRow.id == ids[message, "oncall"]).values(detail=detail)
            )
        session.add_all(
            [
                EscalationRow(source_delivery_id=ids["h3", "oncall"], subject="message:h3", receiver="lead",
                    status="sent", delivery_id=ids["h3", "lead"], decided_at=SENT + timedelta(minutes=15)),
                EscalationRow(source_delivery_id=ids["h1", "oncall"], subject="message:h1", receiver="lead",
                    status="cancelled", decided_at=SENT + timedelta(minutes=15)),
                EscalationRow(source_delivery_id=ids["old", "oncall"], subject="message:old", receiver="lead",
                    status="sent", decided_at=at(1, 10)),
            ]
        )  # fmt: skip
        incident_id = incident.id
    alerted = SENT + timedelta(seconds=5)
    assert take(store, Target(message_id="h1"), "ana", "slack", alerted + timedelta(seconds=60))
    assert take(
        store, Target(message_id="h2"), "Zendesk agent 7", "zendesk", alerted + timedelta(seconds=300)
    )
    assert take(store, Target(message_id="u1"), "ana", "slack", alerted + timedelta(seconds=30))
    assert take(store, Target(incident_id=incident_id), "bo", "slack", alerted + timedelta(seconds=120))
    assert take(store, Target(message_id="old"), "ana", "slack", at(1, 10))  # taken before the window


def test_time_to_acknowledge_by_urgency_and_cases_never_taken(store: Store):
    fill_oncall(store)
    with store.session() as session:
        stats = oncall(session, WEEK)
    by_urgency = {u.urgency: u for u in stats.urgencies}
    assert [u.urgency for u in stats.urgencies] == ["urgent", "high"]  # most urgent first
    high, urgent = by_urgency["high"], by_urgency["urgent"]
    assert (high.alerted, high.never_taken, high.taken, high.sample) == (3, 1, 2, 2)
    assert (high.p50_s, high.p90_s) == (180.0, 276.0)  # 60 s and 300 s: interpolated as percentile_cont
    assert (urgent.alerted, urgent.never_taken, urgent.taken, urgent.sample) == (2, 0, 2, 2)
    assert (urgent.p50_s, urgent.p90_s) == (75.0, 111.0)  # 30 s (a case) and 120 s (an incident)
    assert (stats.alerted, stats.never_taken, stats.taken) == (5, 1, 4)
    assert stats.taken_by == {"slack": 3, "zendesk": 1}


def test_silenced_inhibited_and_escalations_in_the_window(store: Store):
    fill_oncall(store)
    with store.session() as session:
        stats = oncall(session, WEEK)
    assert (stats.silenced, stats.inhibited) == (3, 1)
    assert stats.silences == {"s1": 2, "s2": 1}
    assert stats.escalations == {"cancelled": 1, "sent": 1}
    assert stats.escalated_to == {"lead": 1}


def test_the_report_gives_the_figures_as_json_and_on_the_page(store: Store):
    fill_oncall(store)
    with store.session() as session:
        report = build_report(session, WEEK)
    section = as_json(report)["oncall"]
    assert section["time_to_acknowledge_s"] == {
        "urgent": {"p50": 75.0, "p90": 111.0, "count": 2, "sample": 2},
        "high": {"p50": 180.0, "p90": 276.0, "count": 2, "sample": 2},
    }
    assert (section["alerted_cases"], section["never_taken"], section["silenced"], section["inhibited"]) == (
        5, 1, 3, 1,
    )  # fmt: skip
    assert section["escalations"] == {"cancelled": 1, "sent": 1}
    page = render_html(report)
    assert ">On call<" in page
    assert escape("5 cases alerted, 1 never taken") in page
    assert (
        "<td>high</td><td class=n>3</td><td class=n>1</td><td class=n>2</td><td class=n>3.0 min</td>" in page
    )
    assert "3 silenced, 1 inhibited. Escalations: 1 cancelled, 1 sent (sent to 1 lead)." in page


def test_a_window_without_alerts_says_so(store: Store):
    window_without = WEEK.__class__(
        since=datetime(2020, 1, 1, tzinfo=UTC), until=datetime(2020, 1, 2, tzinfo=UTC)
    )
    fill_oncall(store)
    with store.session() as session:
        stats = oncall(session, window_without)
    assert (stats.urgencies, stats.silenced, stats.escalations) == ([], 0, {})
