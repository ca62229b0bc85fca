"""Parquet files by day: one file per table per day, each key once after a batch is sent again, and a
new column in the files written after it was added."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb

from tests.report.conftest import at
from tests.warehouse.conftest import warehouse_settings
from tests.warehouse.helpers import bulk_fill
from triage.store import Store
from triage.warehouse import schema
from triage.warehouse.lane import run_once
from triage.warehouse.targets.parquet import ParquetTarget


def query(sql: str) -> list[tuple]:
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_files_by_day_hold_each_row_once(store: Store, tmp_path: Path):
    start = at(1, 23, 58)  # 300 messages a second apart: 120 on the 1st, 180 on the 2nd
    bulk_fill(store, 300, start=start)
    directory = tmp_path / "files"
    run_once(store, warehouse_settings(f"parquet:///{directory}", batch_size=70), settle_s=0)
    files = sorted(path.name for path in (directory / "triage_messages").iterdir())
    assert files == ["2026-11-01.parquet", "2026-11-02.parquet"]
    messages = f"read_parquet('{directory}/triage_messages/*.parquet', filename = true)"
    assert query(f"SELECT count(*), count(DISTINCT id) FROM {messages}") == [(300, 300)]
    assert query(f"SELECT count(*) FROM {messages} GROUP BY filename ORDER BY filename") == [(120,), (180,)]
    assert query(f"SELECT count(*) FROM read_parquet('{directory}/triage_deliveries/*.parquet')") == [(300,)]

    target = ParquetTarget(directory, "triage_")  # a batch sent again (a crash before its cursor moved)
    again = [
        {"id": f"m{n:08d}", "received_at": start + timedelta(seconds=n), "kafka_offset": -1}
        for n in range(118, 123)
    ]
    target.upsert(schema.MESSAGES, again)
    target.close()
    assert query(
        f"SELECT count(*), count(DISTINCT id), count(*) FILTER (kafka_offset = -1) FROM {messages}"
    ) == [(300, 300, 5)]
    assert not list(directory.rglob("*.tmp"))


def test_a_new_column_appears_in_the_files_written_after(tmp_path: Path):
    older = replace(
        schema.MESSAGES, columns=tuple(c for c in schema.MESSAGES.columns if c.name != "ticket_system")
    )
    target = ParquetTarget(tmp_path, "triage_")
    target.ensure_table(older)
    target.upsert(older, [{"id": "a", "received_at": at(1, 9)}])
    target.ensure_table(schema.MESSAGES)
    target.upsert(schema.MESSAGES, [{"id": "b", "received_at": at(2, 9), "ticket_system": "zendesk"}])
    target.close()
    files = f"read_parquet('{tmp_path}/triage_messages/*.parquet', union_by_name = true)"
    assert query(f"SELECT id, ticket_system FROM {files} ORDER BY id") == [("a", None), ("b", "zendesk")]
