"""`triage report --from-warehouse`: the report drawn from DuckDB (and Parquet) equals the store's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.report.conftest import WEEK, at
from tests.warehouse.conftest import warehouse_settings
from tests.warehouse.helpers import TRIAGE, sync_env
from triage.report.model import as_json
from triage.report.queries import build_report
from triage.report.window import Window
from triage.store import Store
from triage.warehouse import report
from triage.warehouse.lane import run_once

WINDOWS = {"week": WEEK, "hours": Window(at(20, 0), at(20, 12)), "month": Window(at(1, 0), at(20, 12))}


@pytest.mark.parametrize("scheme", ["duckdb", "parquet"])
def test_the_report_from_the_warehouse_equals_the_stores(filled: Store, tmp_path: Path, scheme: str):
    url = f"duckdb:///{tmp_path / 'cx.duckdb'}" if scheme == "duckdb" else f"parquet:///{tmp_path / 'files'}"
    run_once(filled, warehouse_settings(url), settle_s=0)
    for name, window in WINDOWS.items():
        with filled.session() as session:
            expected = as_json(build_report(session, window, 1.0, oncall_section=False))
        with report.session(url, "triage_") as session:
            got = as_json(build_report(session, window, 1.0, oncall_section=False))
        assert got == expected, name
    assert expected["incidents"][0]["summary"] == "Site down 1"  # the month's, with its first case
    assert expected["total_messages"] == 15 and expected["churn_risk"]["total"] > 0


def test_the_command_reads_the_warehouse_without_the_store(filled: Store, tmp_path: Path):
    path = tmp_path / "cx.duckdb"
    run_once(filled, warehouse_settings(f"duckdb:///{path}"), settle_s=0)
    env = sync_env(f"sqlite:///{tmp_path / 'absent.db'}", "")
    done = subprocess.run(
        [*TRIAGE, "report", "--since", "400d", "--format", "json", "--from-warehouse", f"duckdb:///{path}"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_messages"] == 15


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("bigquery://p/d", "reads duckdb:///FILE or parquet:///DIR"),
        ("duckdb:///nowhere.duckdb", "does not exist"),
    ],
)
def test_an_unreadable_warehouse_is_one_line(tmp_path: Path, url: str, said: str):
    done = subprocess.run(
        [*TRIAGE, "report", "--from-warehouse", url], env=sync_env(f"sqlite:///{tmp_path}/x.db", ""),
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and said in done.stderr, done.stderr
