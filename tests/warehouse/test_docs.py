"""docs/warehouse.md: its tables are the schema the sync creates, and its example queries run on a
DuckDB warehouse with the answers a reader would expect from the data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.warehouse.conftest import fill, read, warehouse_settings
from triage.store import Store
from triage.warehouse.lane import run_once
from triage.warehouse.reference import BEGIN, END, tables_markdown

PAGE = REPO / "docs" / "warehouse.md"


def example(title: str) -> str:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(f"### {title}\n", 1)[1]
    return re.search(r"```sql\n(.*?)```", section, flags=re.S)[1]


def test_the_tables_documented_are_the_schema():
    text = PAGE.read_text(encoding="utf-8")
    between = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert between == tables_markdown(), (
        "docs/warehouse.md is out of date: python -m triage.warehouse.reference"
    )


def test_the_bigquery_and_redshift_sections_are_there():
    headings = re.findall(r"^### (.+)$", PAGE.read_text(encoding="utf-8"), flags=re.M)
    assert {"DuckDB", "Parquet", "BigQuery", "Redshift"} <= set(headings)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("examples")
    store = Store(f"sqlite:///{directory / 'triage.db'}")
    store.upgrade()
    fill(store)
    run_once(store, warehouse_settings(f"duckdb:///{directory / 'cx.duckdb'}"), settle_s=0)
    store.close()
    return directory / "cx.duckdb"


def test_sentiment_by_tier_by_week(warehouse: Path):
    rows = read(warehouse, example("Sentiment by tier by week"))
    assert sum(row[2] for row in rows) == 15
    by_tier = {(row[0].date().isoformat(), row[1]): row[2:] for row in rows}
    assert by_tier[("2026-11-16", "enterprise")] == (2, 1, 0.0)  # b1 negative, b2 positive
    assert by_tier[("2026-10-26", "free")] == (1, 1, -1.0)  # "old", the week of 2026-11-01


def test_time_to_alert(warehouse: Path):
    rows = read(warehouse, example("Time to alert"))
    # oncall: 1 s for each incident case (three), 5 s ("old"), 70, 80 and 100 s; helpdesk: b2 at 5 s
    assert rows == [("helpdesk", 1, 5.0, 5.0), ("oncall", 7, 5.0, 88.0)]


def test_model_vs_team_agreement(warehouse: Path):
    rows = read(warehouse, example("Model-vs-team agreement"))
    assert [row[:3] for row in rows] == [("category", 3, 0), ("sentiment", 1, 1), ("urgency", 4, 2)]
    assert rows[2][3] == pytest.approx(0.5)
