"""NPS, CSAT and CES, the repeat-contact rate and the at-risk ranking, against hand computations, on
SQLite and PostgreSQL (the `store` fixture runs both)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.report.conftest import NOW, WEEK, add, fill_surveys
from triage.cli import app
from triage.report.model import as_json
from triage.report.queries import build_report
from triage.report.score_queries import at_risk, cx_scores, repeat_contacts
from triage.report.window import Window
from triage.store import Store

MONTH = Window(since=NOW - timedelta(days=30), until=NOW)  # 2026-10-21 12:00 to 2026-11-20 12:00


def test_nps_csat_and_ces_match_a_hand_computation(store: Store):
    fill_surveys(store)
    with store.session() as session:
        document = as_json(build_report(session, WEEK))
    scores = document["scores"]
    # NPS answers in the window: 10 9 8 6 3 10 -> promoters 3, detractors 2 of 6: (3 - 2) / 6
    assert scores["nps"]["count"] == 6
    assert scores["nps"]["value"] == pytest.approx(100 * (3 - 2) / 6, abs=1e-4)
    assert scores["nps"]["by_week"] == [
        {"week": "2026-11-09", "value": 100.0, "count": 1},  # n1: 10
        {"week": "2026-11-16", "value": 0.0, "count": 5},  # 9 8 6 3 10: 2 promoters, 2 detractors
    ]
    assert scores["nps"]["by_channel"] == {
        "chat": {"value": 0.0, "count": 3},  # 8 6 10
        "email": {"value": pytest.approx(100 / 3, abs=1e-4), "count": 3},  # 10 9 3
    }
    # CSAT: 5 4 2 3 -> 2 of 4 answers are 4 or 5
    assert (scores["csat"]["value"], scores["csat"]["count"]) == (50.0, 4)
    assert scores["csat"]["by_week"] == [
        {"week": "2026-11-09", "value": 100.0, "count": 1},
        {"week": "2026-11-16", "value": pytest.approx(100 / 3, abs=1e-4), "count": 3},
    ]
    assert scores["csat"]["by_channel"] == {
        "chat": {"value": 50.0, "count": 2},
        "email": {"value": 50.0, "count": 2},
    }
    # CES: the mean of 7 and 2
    assert (scores["ces"]["value"], scores["ces"]["count"]) == (4.5, 2)
    assert scores["ces"]["by_channel"] == {
        "chat": {"value": 2.0, "count": 1},
        "email": {"value": 7.0, "count": 1},
    }


def test_a_survey_without_answers_has_no_value(store: Store):
    with store.session() as session:
        cx = cx_scores(session, WEEK)
        nps = as_json(build_report(session, WEEK))["scores"]["nps"]
    assert cx.scores["nps"].value is None and nps["value"] is None and nps["count"] == 0
    assert [week["count"] for week in nps["by_week"]] == [0, 0] and nps["by_channel"] == {}


def fill_contacts(store: Store) -> None:
    """k1 writes eight times (one before the window, one a survey answer), k2 once, k3 by e-mail then by
    chat (one customer key); messages without a customer are nobody's contacts."""
    k1 = {"customer": "k1", "customer_key": "id:k1", "conversation": "k1"}
    add(store, "p0", datetime(2026, 10, 18, 9, tzinfo=UTC), **k1)  # before the window
    add(store, "m1", datetime(2026, 10, 22, 9, tzinfo=UTC), **k1)  # 4 days after p0: repeat
    add(store, "m2", datetime(2026, 10, 23, 9, tzinfo=UTC), **k1)  # repeat
    add(store, "m3", datetime(2026, 11, 5, 9, tzinfo=UTC), **k1)  # 13 days later: not
    add(store, "m4", datetime(2026, 11, 5, 11, tzinfo=UTC), channel="chat", **k1)  # repeat
    add(store, "sv", datetime(2026, 11, 6, 9, tzinfo=UTC), survey=("nps", 2), **k1)  # not a contact
    add(store, "m5", datetime(2026, 11, 12, 11, tzinfo=UTC), **k1)  # exactly 7 days after m4: repeat
    add(store, "q1", datetime(2026, 11, 1, 9, tzinfo=UTC), customer="k2", conversation="k2")  # no key
    add(store, "r1", datetime(2026, 11, 10, 9, tzinfo=UTC), customer=None, customer_key="email:x@example.com",
        conversation="k3")  # fmt: skip
    add(store, "r2", datetime(2026, 11, 16, 9, tzinfo=UTC), customer="k3", customer_key="email:x@example.com",
        conversation="k3b", channel="chat")  # fmt: skip
    for n in range(2):
        add(store, f"anon{n}", datetime(2026, 11, 2, 9 + n, tzinfo=UTC), customer=None, conversation="anon")


def test_repeat_contact_rate_on_a_hand_checked_sequence(store: Store):
    fill_contacts(store)
    with store.session() as session:
        repeat = repeat_contacts(session, MONTH)
        document = as_json(build_report(session, MONTH))
    # contacts in the window: m1 m2 m3 m4 m5, q1, r1 r2; repeats: m1 m2 m4 m5, r2
    assert (repeat.contacts, repeat.repeats) == (8, 5)
    assert document["repeat_contact_rate"] == 0.625
    listed = [(c.customer, c.contacts, c.repeats, c.channels) for c in repeat.customers]
    assert listed == [("k1", 5, 4, ["chat", "email"]), ("k3", 2, 1, ["chat", "email"])]
    assert document["repeat_contacts"]["customers"][0]["last_contact_at"] == "2026-11-12T11:00:00Z"


def test_at_risk_ranks_worsening_mood_detractors_repeats_and_tier(store: Store):
    first = datetime(2026, 11, 19, 9, tzinfo=UTC)
    # mood: positive, neutral, negative (the stored history has no trend: first and last mood decide)
    for n, sentiment in enumerate(("positive", "neutral", "negative")):
        add(
            store,
            f"w{n}",
            first + timedelta(hours=n),
            customer="worse",
            conversation=f"w{n}",
            sentiment=sentiment,
        )
    add(store, "d1", first, customer="detractor", conversation="d1", survey=("nps", 4), sentiment="negative")
    add(store, "e1", first, customer="big", tier="enterprise", conversation="e1", survey=("csat", 2),
        sentiment="negative")  # fmt: skip
    add(store, "h1", first, customer="happy", conversation="h1", survey=("nps", 9), sentiment="positive")
    with store.session() as session:
        risk = at_risk(session, WEEK, repeat_contacts(session, WEEK))
    ranked = [(c.customer_id, c.risk, c.worsening, c.detractors, c.repeats) for c in risk.customers]
    assert ranked == [
        ("worse", 3 + 1 + 2, True, 0, 2),  # worsening 3, one negative, two repeat contacts
        ("big", 3 + 1 + 2, False, 1, 0),  # a detractor answer 3, negative 1, enterprise 2; less recent
        ("detractor", 3 + 1, False, 1, 0),
    ]
    assert risk.total == 3  # the promoter is not at risk


def test_report_json_through_the_cli(
    store: Store, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    now = datetime.now(UTC)
    for n, (survey, score) in enumerate((("nps", 10), ("nps", 0), ("nps", 9), ("csat", 5))):
        add(store, f"s{n}", now - timedelta(hours=n + 1), customer=f"c{n}", conversation=f"s{n}",
            survey=(survey, score))  # fmt: skip
    add(store, "old", now - timedelta(days=3), customer="c9", conversation="old", survey=("nps", 0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["report", "--since", "2d", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    nps = document["scores"]["nps"]
    assert (nps["value"], nps["count"]) == (pytest.approx(100 / 3, abs=1e-4), 3)  # (2 - 1) / 3
    assert document["scores"]["csat"]["value"] == 100.0 and document["scores"]["ces"]["count"] == 0
    assert document["repeat_contact_rate"] is None  # survey answers are not contacts
