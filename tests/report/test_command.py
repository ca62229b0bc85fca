"""`triage report` as an operator runs it: settings from the environment, files or standard output."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.report.conftest import HOSTILE, add, label
from triage.report.command import report
from triage.store import Store
from triage.store.feedback import Correction, FeedbackStore

app = typer.Typer()
app.command()(report)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty SQLite store named by TRIAGE_DATABASE_URL, run from an empty directory (no config file)."""
    url = f"sqlite:///{tmp_path / 'triage.db'}"
    store = Store(url)
    store.upgrade()
    store.close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    return url


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_json_gives_the_numbers_as_one_object(database: str):
    store = Store(database)
    store.upgrade()
    now = datetime.now(UTC)
    add(store, "m1", now - timedelta(hours=30), customer="c1", conversation="k1", sentiment="negative",
        tokens=(90, 10), cost=0.25, alerts={"oncall": ("sent", 3.0)})  # fmt: skip
    add(store, "m2", now - timedelta(hours=2), customer="c1", conversation="k1", channel="chat",
        urgency="urgent", sentiment="negative", category=HOSTILE, degraded=True)  # fmt: skip
    add(store, "m3", now - timedelta(days=3), customer="c2", conversation="k2")  # outside --since 2d
    FeedbackStore(store).save(
        [
            Correction([label("m1", "urgency", "normal", "high", now - timedelta(hours=29))]),
            Correction([label("m2", "urgency", "urgent", "urgent", now - timedelta(hours=1), "zendesk")]),
            Correction([label("m3", "urgency", "normal", "low", now - timedelta(days=3))]),  # outside
        ]
    )
    store.close()

    result = run("--since", "2d", "--format", "json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {
        "generated_at", "window", "total_messages", "buckets", "messages", "sentiment_by_channel",
        "urgency", "degraded", "llm", "categories", "churn_risk", "alerts", "incidents", "model_vs_team",
        "oncall",
        "scores", "repeat_contact_rate", "repeat_contacts",
    }  # fmt: skip
    assert document["window"]["bucket"] == "day" and len(document["buckets"]) == 3
    assert document["total_messages"] == 2 and sum(document["messages"]) == 2
    assert sum(document["sentiment_by_channel"]["chat"]["negative"]) == 1
    assert sum(document["urgency"]["urgent"]) == 1 and sum(document["degraded"]) == 1
    assert sum(document["llm"]["prompt_tokens"]) == 90 and sum(document["llm"]["cost_usd"]) == 0.25
    assert document["categories"] == [
        {"category": HOSTILE, "messages": 1, "negative": 1, "negative_share": 1.0},
        {"category": "billing", "messages": 1, "negative": 1, "negative_share": 1.0},
    ]
    [customer] = document["churn_risk"]["customers"]
    assert document["churn_risk"]["total"] == 1
    assert (customer["customer_id"], customer["negative"], customer["escalations"]) == ("c1", 2, 1)
    assert document["alerts"] == [
        {
            "receiver": "oncall",
            "total": 1,
            "statuses": {"sent": 1},
            "skipped": {},
            "latency_s": {"p50": 3.0, "p95": 3.0, "sample": 1},
        }
    ]
    team = document["model_vs_team"]
    assert (team["labels"], team["corrections"], team["agreement"]) == (2, 1, 0.5)
    assert team["fields"]["urgency"] == {"labels": 2, "corrections": 1, "agreement": 0.5}
    assert team["sources"] == {"slack": 1, "zendesk": 1}
    assert sum(team["corrections_per_week"]["urgency"]) == 1 and len(team["weeks"]) in (1, 2)
    assert [a for a in team["agreement_per_week"] if a is not None] in ([0.5], [0.0, 1.0], [1.0, 0.0])
    assert team["most_corrected_categories"] == [
        {"category": "billing", "labels": 1, "corrections": 1, "team_categories": {}}
    ]


def test_html_goes_to_report_html_by_default(database: str, tmp_path: Path):
    store = Store(database)
    store.upgrade()
    add(store, "m1", datetime.now(UTC) - timedelta(hours=1), customer="c1", conversation="k1")
    store.close()

    result = run()

    assert result.exit_code == 0, result.output
    assert result.stdout == "wrote report.html: 1 message in the last 7 days\n"
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page


def test_an_empty_store_gives_a_friendly_page(database: str, tmp_path: Path):
    result = run("--out", "empty.html")

    assert result.exit_code == 0, result.output
    page = (tmp_path / "empty.html").read_text()
    assert "No messages in the last 7 days." in page and "<svg" not in page


def test_an_empty_store_gives_zeros_in_json(database: str):
    result = run("--since", "12h", "--format", "json")

    document = json.loads(result.stdout)
    assert document["total_messages"] == 0 and document["window"]["bucket"] == "hour"
    assert document["categories"] == [] and document["churn_risk"] == {"total": 0, "customers": []}


@pytest.mark.parametrize("since", ["soon", "7", "0d", "-3h", "7x"])
def test_a_bad_since_is_one_line_and_exit_2(database: str, since: str):
    result = run("--since", since)

    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: --since: ") and repr(since) in line


def test_an_unreachable_database_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")

    result = run()

    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: database postgresql+psycopg://nobody@127.0.0.1:1/none: ")


@pytest.mark.parametrize("url", ["sqlite:///triage.db", "sqlite:///{tmp}/nowhere/store.db"])
def test_a_sqlite_file_that_does_not_exist_is_refused_not_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str
):
    monkeypatch.chdir(tmp_path)
    url = url.format(tmp=tmp_path)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)

    result = run()

    assert result.exit_code == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    path = url.removeprefix("sqlite:///")
    assert line == (
        f"error: no store at {path}: the SQLite file does not exist (TRIAGE_DATABASE_URL={url}); "
        "`triage demo` keeps its store in triage-demo.db"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created, no report written
