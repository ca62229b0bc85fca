"""Every aggregate of the report, exact, on SQLite and PostgreSQL (fill_week documents the rows)."""

from datetime import timedelta

import pytest

from tests.report.conftest import HOSTILE, NOW, WEEK, add, at, fill_labels
from triage.report.model import AtRiskCustomer, CategoryStat, ChurnRisk, CorrectedCategory, ReceiverStat
from triage.report.queries import (
    activity,
    alerts,
    build_report,
    categories,
    model_vs_team,
    percentile,
)
from triage.report.score_queries import at_risk, repeat_contacts
from triage.report.window import Window
from triage.store import Store

DAYS = [f"2026-11-{day}" for day in range(13, 21)]


def test_series_per_day_by_channel_urgency_degraded_and_llm_spend(week: Store):
    with week.session() as session:
        series = activity(session, WEEK)
    assert series.buckets == DAYS
    #                          13 14 15 16 17 18 19 20
    assert series.messages == [0, 0, 0, 4, 0, 2, 2, 3]
    assert series.sentiment_by_channel == {
        "(none)": {"negative": [0] * 8, "neutral": [0, 0, 0, 0, 0, 0, 0, 1], "positive": [0] * 8},
        "chat": {
            "negative": [0, 0, 0, 0, 0, 0, 1, 0],
            "neutral": [0, 0, 0, 1, 0, 0, 0, 0],
            "positive": [0, 0, 0, 1, 0, 0, 1, 0],
        },
        "email": {"negative": [0, 0, 0, 2, 0, 2, 0, 2], "neutral": [0] * 8, "positive": [0] * 8},
    }
    assert series.urgency == {
        "low": [0, 0, 0, 2, 0, 1, 0, 0],
        "normal": [0, 0, 0, 1, 0, 0, 1, 1],
        "high": [0, 0, 0, 1, 0, 1, 0, 1],
        "urgent": [0, 0, 0, 0, 0, 0, 1, 1],
    }
    assert series.degraded == [0, 0, 0, 0, 0, 1, 0, 0]
    assert series.prompt_tokens == [0, 0, 0, 0, 0, 300, 300, 0]
    assert series.completion_tokens == [0, 0, 0, 0, 0, 30, 30, 0]
    assert series.cost_usd == pytest.approx([0, 0, 0, 0, 0, 0.003, 0.003, 0])


def test_windows_under_two_days_are_bucketed_by_hour(week: Store):
    window = Window(since=NOW - timedelta(hours=12), until=NOW)
    with week.session() as session:
        series = activity(session, window)
    assert series.buckets == [f"2026-11-20T{hour:02d}:00" for hour in range(13)]
    assert series.messages == [0] * 11 + [3, 0]  # c1, d1, d2 between 11:00 and 12:00
    assert series.urgency["urgent"] == [0] * 11 + [1, 0]


def test_categories_ranked_by_volume_with_their_negative_messages(week: Store):
    with week.session() as session:
        ranked = categories(session, WEEK)
    assert ranked == [
        CategoryStat("billing", 4, 4),
        CategoryStat(HOSTILE, 2, 2),
        CategoryStat("outage", 2, 1),
        CategoryStat("shipping", 2, 0),
        CategoryStat("how_to", 1, 0),
    ]
    assert ranked[2].negative_share == 0.5


def test_churn_risk_lists_repeat_complainers_and_escalations_with_current_tier(week: Store):
    with week.session() as session:
        risk = at_risk(session, WEEK, repeat_contacts(session, WEEK))
    assert risk.total == 3
    # points: negatives 1 each, an escalation 2, a repeat contact 1, the pro tier 1
    assert risk.customers == [
        AtRiskCustomer("cust-a", "pro", 2, 2, 1, at(18, 10), repeats=1, risk=2 + 2 + 1 + 1),
        AtRiskCustomer("cust-d", "free", 2, 2, 0, at(20, 11, 40), repeats=1, risk=2 + 1),
        AtRiskCustomer("cust-e", "free", 2, 0, 1, at(16, 11), repeats=1, risk=2 + 1),
    ]


def test_churn_risk_counts_all_but_lists_the_first(week: Store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("triage.report.score_queries.AT_RISK_LISTED", 1)
    with week.session() as session:
        risk = at_risk(session, WEEK, repeat_contacts(session, WEEK))
    assert risk.total == 3
    assert [customer.customer_id for customer in risk.customers] == ["cust-a"]


def test_alerts_per_receiver_by_status_with_time_to_alert(week: Store):
    with week.session() as session:
        stats = alerts(session, WEEK)
    assert stats == [
        # b2 has no created_at: timed from when it was received; a1's skip is no alert sent
        ReceiverStat(
            "helpdesk", {"sent": 1, "skipped": 1}, 5.0, 5.0, 1, skipped={"helpdesk is not configured": 1}
        ),
        # a2, b1, d1 took 70, 80, 100 s; p95 interpolates 80 + 0.9 * 20
        ReceiverStat("oncall", {"pending": 1, "sent": 3}, 80.0, pytest.approx(98.0), 3, skipped={}),
    ]


def test_skipped_deliveries_are_counted_by_their_reason(store: Store):
    no_slack = "Slack is not configured (no TRIAGE_SLACK__TOKEN)"
    for i, reason in enumerate([no_slack, "ticket 7 not found", no_slack]):
        add(store, f"s{i}", at(20, 10, i), customer="c", conversation=f"k{i}",
            alerts={"desk": ("skipped", None)}, skip_reason=reason)  # fmt: skip
    add(store, "sent", at(20, 11), customer="c", conversation="k", alerts={"desk": ("sent", 2.0)})
    with store.session() as session:
        (desk,) = alerts(session, WEEK)
    assert (desk.total, desk.sent) == (4, 1)
    assert desk.statuses == {"sent": 1, "skipped": 3}
    assert list(desk.skipped.items()) == [(no_slack, 2), ("ticket 7 not found", 1)]  # most first


def test_a_delivery_failed_for_good_is_counted_as_failed_and_never_timed(week: Store):
    add(
        week,
        "gone-1",
        at(20, 9),
        customer="cust-z",
        conversation="z",
        alerts={"helpdesk": ("failed", 1.0)},  # a ticket the helpdesk said was gone (404)
    )
    with week.session() as session:
        [helpdesk, _] = alerts(session, WEEK)
    assert helpdesk.statuses == {"failed": 1, "sent": 1, "skipped": 1}
    assert (helpdesk.latency_sample, helpdesk.latency_p50_s) == (1, 5.0)  # the failed one is no alert


def test_time_to_alert_comes_from_the_newest_sent_alerts(week: Store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("triage.report.queries.LATENCY_SAMPLE", 2)
    with week.session() as session:
        oncall = alerts(session, WEEK)[1]
    assert (oncall.latency_sample, oncall.latency_p50_s) == (2, 90.0)  # b1 and d1, not a2


def test_an_empty_store_gives_zeros_not_errors(store: Store):
    with store.session() as session:
        report = build_report(session, WEEK)
    assert report.activity.buckets == DAYS
    assert report.activity.total == 0 and report.activity.messages == [0] * 8
    assert report.activity.sentiment_by_channel == {}
    assert report.activity.urgency == {level: [0] * 8 for level in ("low", "normal", "high", "urgent")}
    assert (report.categories, report.churn_risk, report.alerts) == ([], ChurnRisk(0, []), [])


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([0.0, 10.0], 0.95) == pytest.approx(9.5)


def test_incidents_in_the_window_with_cases_customers_and_state(store: Store):
    from sqlalchemy import update

    from triage.report.html import render_html
    from triage.report.model import as_json
    from triage.store.tables import DeliveryRow, IncidentRow

    for i, customer in enumerate(["c1", "c2", "c2"]):  # three cases, two customers
        add(
            store,
            f"o{i}",
            at(20, 10, i),
            customer=customer,
            conversation=f"k{i}",
            alerts={"oncall": ("sent", 1)},
        )
    add(store, "old", at(10, 10), customer="c9", conversation="k9", alerts={"oncall": ("sent", 1)})
    with store.session() as session:
        for uid, first, last, closes, members in (
            ("a" * 32, at(20, 10), at(20, 10, 2), at(20, 10, 32), ["o0", "o1", "o2"]),
            ("b" * 32, at(10, 10), at(10, 10), at(10, 10, 30), ["old"]),  # before the window
        ):
            incident = IncidentRow(
                uid=uid, receiver="oncall", group_key='route.routes[1] {"category": "outage"}', mode="alert",
                first_case_at=first, last_case_at=last, closes_at=closes, case_count=len(members),
                ticket_count=0, top_urgency="urgent", alerted_count=len(members), interval_s=60,
                centroid_n=0, update_attempts=0, slack_ts="1795.000100",
            )  # fmt: skip
            session.add(incident)
            session.flush()
            for seq, message_id in enumerate(members, start=1):
                session.execute(
                    update(DeliveryRow)
                    .where((DeliveryRow.message_id == message_id) & (DeliveryRow.receiver == "oncall"))
                    .values(
                        incident_id=incident.id, incident_seq=seq, payload={"summary": f"Site down {seq}"}
                    )
                )
    with store.session() as session:
        report = build_report(session, Window(at(14, 0), at(20, 10, 20)))
    [incident] = report.incidents
    assert (incident.receiver, incident.key, incident.cases, incident.customers) == (
        "oncall",
        "category=outage",
        3,
        2,
    )
    assert (incident.summary, incident.top_urgency, incident.open) == ("Site down 1", "urgent", True)
    [shown] = as_json(report)["incidents"]
    assert shown["status"] == "open" and shown["first_case_at"] == "2026-11-20T10:00:00Z"
    assert "category=outage" in render_html(report) and "Site down 1" in render_html(report)
    with store.session() as session:
        later = build_report(session, Window(at(14, 0), at(20, 12)))
    assert later.incidents[0].open is False  # no case within group_idle: closed


def test_model_vs_team_per_week_field_and_source_with_the_most_corrected_categories(week: Store):
    fill_labels(week)
    with week.session() as session:
        stats = model_vs_team(session, WEEK)
    assert stats.weeks == ["2026-11-09", "2026-11-16"]
    assert stats.labels == {"urgency": [1, 2], "sentiment": [0, 1], "category": [1, 2]}
    assert stats.corrections == {"urgency": [0, 1], "sentiment": [0, 0], "category": [1, 2]}
    assert stats.sources == {"slack": 5, "zendesk": 2}
    assert (stats.total_labels, stats.total_corrections) == (7, 4)
    assert stats.agreement() == pytest.approx(3 / 7)
    assert stats.agreement("urgency") == pytest.approx(2 / 3) and stats.agreement("category") == 0.0
    assert stats.weekly_agreement() == [pytest.approx(1 / 2), pytest.approx(2 / 5)]
    assert stats.categories == [
        CorrectedCategory("billing", 4, 3, {"refund": 2}),  # a1 and a2: two moved to refund, one urgency
        CorrectedCategory("outage", 2, 1, {"bug": 1}),
    ]  # how_to (c1): labelled, never corrected, not listed


def test_model_vs_team_is_empty_without_labels(week: Store):
    with week.session() as session:
        stats = model_vs_team(session, WEEK)
    assert stats.total_labels == 0 and stats.agreement() is None and stats.categories == []
    assert stats.weekly_agreement() == [None, None]
