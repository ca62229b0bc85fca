"""kill -9 during `triage warehouse sync`: after the next run every row is in the warehouse once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import select

from tests.warehouse.conftest import read
from tests.warehouse.helpers import TRIAGE, bulk_fill, duckdb_url, run_sync, sync_env
from triage.store import Store
from triage.store.tables import WarehouseCursorRow

COUNT = 12_000


def cursors(store: Store) -> dict[str, str]:
    with store.session(read_only=True) as session:
        return {row.table_name: row.position_key for row in session.scalars(select(WarehouseCursorRow))}


def test_killed_mid_sync_then_run_again_leaves_every_row_once(
    store: Store, database_url: str, tmp_path: Path
):
    bulk_fill(store, COUNT)
    path = tmp_path / "cx.duckdb"
    env = sync_env(database_url, duckdb_url(path), TRIAGE_WAREHOUSE__BATCH_SIZE="100")
    process = subprocess.Popen(
        [*TRIAGE, "warehouse", "sync"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while "messages" not in cursors(store):  # the first batches are in: kill it in the middle
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    left_at = cursors(store)
    assert left_at.get("deliveries") is None or int(left_at["deliveries"]) < COUNT  # it was cut short

    done = run_sync(database_url, duckdb_url(path), TRIAGE_WAREHOUSE__BATCH_SIZE="1000")
    assert done.returncode == 0, done.stderr
    for table, key in (("messages", "id"), ("results", "message_id"), ("deliveries", "id")):
        assert read(path, f"SELECT count(*), count(DISTINCT {key}) FROM triage_{table}") == [(COUNT, COUNT)]
    assert read(path, "SELECT min(kafka_offset), max(kafka_offset) FROM triage_messages") == [(0, COUNT - 1)]
