"""The page: customer-derived text escaped, every section present, durations and money readable."""

from html import escape
from pathlib import Path

import pytest

from tests.report.conftest import HOSTILE, WEEK, add, at, fill_labels, fill_week
from triage.report.html import dollars, render_html, seconds
from triage.report.queries import build_report
from triage.store import Store


@pytest.fixture
def page(tmp_path: Path) -> str:
    store = Store(f"sqlite:///{tmp_path / 'week.db'}")
    store.upgrade()
    fill_week(store)
    with store.session() as session:
        report = build_report(session, WEEK)
    store.close()
    return render_html(report)


def test_customer_derived_text_is_escaped(page: str):
    assert HOSTILE not in page
    assert escape(HOSTILE) in page  # as a category label, its tooltip and the table


def test_every_section_is_on_the_page(page: str):
    for heading in (
        "Sentiment by channel",
        "Urgency mix",
        "Categories",
        "Churn risk",
        "Alerts",
        "Time from message to alert",
        "LLM tokens and cost",
        "Degraded classification",
        "Model vs team",
        "CX scores",
    ):
        assert f">{heading}<" in page
    assert "<td>cust-a</td><td>pro</td>" in page
    assert "in the window: 3; the most at risk first" in page


def test_model_vs_team_says_how_often_the_team_corrected_the_model(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'week.db'}")
    store.upgrade()
    fill_week(store)
    assert "No labels from the team in the window" in page_of(store)
    fill_labels(store)
    page = page_of(store)
    store.close()
    assert (
        "7 labels from the team in the window (5 from Slack, 2 from Zendesk): 4 corrections; "
        "the model agreed with the team on 43% of them."
    ) in page
    assert "<h3>Agreement over time</h3>" in page and "<h3>Most corrected categories</h3>" in page
    assert "<tr><td>billing</td><td class=n>4</td><td class=n>3</td><td class=n>refund 2</td></tr>" in page
    assert "<tr><td>category</td><td class=n>3</td><td class=n>3</td><td class=n>0%</td></tr>" in page


def page_of(store: Store) -> str:
    with store.session() as session:
        return render_html(build_report(session, WEEK))


def test_durations_and_money_read_well():
    assert [seconds(v) for v in (None, 0.25, 5.0, 600.0, 10800.0)] == [
        "–",
        "250 ms",
        "5.0 s",
        "10.0 min",
        "3.0 h",
    ]
    assert [dollars(v) for v in (0.0, 0.0042, 12345.678)] == ["$0.00", "$0.0042", "$12,345.68"]


def test_the_alerts_tile_counts_sent_alerts_and_says_how_many_were_skipped(page: str):
    # helpdesk: 1 sent, 1 skipped; oncall: 3 sent, 1 pending
    assert '<div class="tile"><b>4</b>alerts sent<small>1 skipped</small></div>' in page
    assert "<h3>Skipped</h3>" in page
    assert "<tr><td>helpdesk</td><td>helpdesk is not configured</td><td class=n>1</td></tr>" in page


def test_counts_take_the_plural_only_when_they_are_not_one(page: str):
    assert "(1 message)</span>" in page  # the message without a channel
    assert "(6 messages)</span>" in page  # email
    assert "<b>11</b>messages</div>" in page
    assert "<b>3</b>customers at risk</div>" in page


def test_without_the_llm_its_tokens_cost_and_degraded_share_are_left_out(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'embedded.db'}")
    store.upgrade()
    add(store, "m1", at(20, 10), customer="c1", conversation="k1", alerts={"oncall": ("skipped", None)})
    page = page_of(store)
    store.close()
    assert ">Urgency mix<" in page
    for absent in (">LLM tokens and cost<", ">Degraded classification<", "LLM cost", ">degraded<"):
        assert absent not in page
    assert '<div class="tile"><b>0</b>alerts sent<small>1 skipped</small></div>' in page
    assert "<b>1</b>message</div>" in page and "<b>1</b>customer at risk</div>" not in page
