"""LLM spend per UTC day against the daily cap, on SQLite and PostgreSQL (fill_week's rows)."""

import pytest

from tests.report.conftest import WEEK
from triage.report.html import render_html
from triage.report.model import as_json
from triage.report.queries import build_report, llm_spend
from triage.store import Store

DAYS = [f"2026-11-{day}" for day in range(13, 21)]


def test_spend_per_day_is_shown_against_the_cap(week: Store):
    with week.session() as session:
        spend = llm_spend(session, WEEK, 0.003)
        report = build_report(session, WEEK, 0.003)
    assert spend.days == DAYS
    assert spend.cost_usd == pytest.approx([0, 0, 0, 0, 0, 0.003, 0.003, 0])
    assert spend.at_cap() == [False] * 5 + [True, True, False]
    document = as_json(report)["llm"]
    assert document["daily_budget_usd"] == 0.003
    assert document["spend_by_day"][5] == {"day": "2026-11-18", "cost_usd": 0.003, "at_cap": True}
    page = render_html(report)
    assert "Spend per UTC day against the $0.0030 daily cap" in page
    assert page.count("reached: embedded model answered") == 2


def test_without_a_cap_the_days_are_listed_and_none_is_at_the_cap(week: Store):
    with week.session() as session:
        report = build_report(session, WEEK)
    assert as_json(report)["llm"]["daily_budget_usd"] is None
    assert not any(day["at_cap"] for day in as_json(report)["llm"]["spend_by_day"])
    assert "daily cap" not in render_html(report)
