"""`triage warehouse sync`: per-table counts, and one line (exit 2) for each way it cannot run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.report.conftest import fill_labels, fill_week
from tests.warehouse.conftest import read
from tests.warehouse.helpers import TRIAGE, duckdb_url, run_sync, sync_env
from triage.store import Store
from triage.warehouse.sync import SETTLE_S


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'triage.db'}"
    store = Store(url)
    store.upgrade()
    fill_week(store)
    fill_labels(store)
    store.close()
    return url


def test_sync_prints_the_rows_sent_per_table(sqlite_store: str, tmp_path: Path):
    time.sleep(SETTLE_S)  # the labels and deliveries were stamped just now (see triage/warehouse/sync.py)
    path = tmp_path / "cx.duckdb"
    done = run_sync(sqlite_store, duckdb_url(path), TRIAGE_WAREHOUSE__TABLE_PREFIX="cx_")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["cx_messages: 12 rows", "cx_results: 12 rows"]
    assert "cx_labels: 8 rows" in lines
    assert read(path, "SELECT count(*) FROM cx_messages") == [(12,)]
    again = run_sync(sqlite_store, duckdb_url(path), TRIAGE_WAREHOUSE__TABLE_PREFIX="cx_")
    assert again.stdout.splitlines()[0] == "cx_messages: 0 rows"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://files/cx", "unknown scheme 'ftp'"),
        ("duckdb://host/cx.duckdb", "expected duckdb:///PATH.duckdb"),
        ("", "no warehouse: set TRIAGE_WAREHOUSE__URL"),
    ],
)
def test_a_bad_url_is_one_line(sqlite_store: str, url: str, said: str):
    done = run_sync(sqlite_store, url)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and said in done.stderr, done.stderr


def test_an_unwritable_warehouse_is_one_line_and_nothing_moves(sqlite_store: str, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = run_sync(sqlite_store, duckdb_url(blocker / "cx.duckdb"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "is unavailable" in done.stderr, done.stderr
    store = Store(sqlite_store)
    try:
        with store.session() as session:
            assert (
                session.execute(
                    __import__("sqlalchemy").text("SELECT count(*) FROM warehouse_cursors")
                ).scalar()
                == 0
            )
    finally:
        store.close()


def test_the_missing_extra_is_named(sqlite_store: str, tmp_path: Path):
    without_duckdb = "import sys; sys.modules['duckdb'] = None; from triage.cli import app; app()"
    done = subprocess.run(
        [sys.executable, "-c", without_duckdb, "warehouse", "sync"],
        env=sync_env(sqlite_store, duckdb_url(tmp_path / "cx.duckdb")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "pip install 'triage[duckdb]'" in done.stderr, done.stderr


def test_help_lists_the_command():
    done = subprocess.run([*TRIAGE, "warehouse", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "sync" in done.stdout
