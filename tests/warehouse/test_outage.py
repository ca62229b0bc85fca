"""The warehouse down (its DuckDB file locked by another process): the worker goes on triaging, nothing
leaves the store; once the file is free the lane catches up and the retention follows."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from tests.conftest import message, produce
from tests.test_worker import wait_until
from tests.warehouse.conftest import read
from tests.warehouse.helpers import bulk_fill, duckdb_url
from triage.settings import Settings, StoreSettings, WarehouseSettings
from triage.store import Store
from triage.store.tables import MessageRow, WarehouseCursorRow
from triage.worker import Worker

HOLD = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(600)"


def failures() -> float:
    return REGISTRY.get_sample_value("triage_warehouse_sync_failures_total") or 0.0


def stored(store: Store, *where) -> int:
    with store.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(MessageRow).where(*where))


def synced_messages(store: Store) -> str | None:
    with store.session(read_only=True) as session:
        return session.scalar(
            select(WarehouseCursorRow.position_key).where(WarehouseCursorRow.table_name == "messages")
        )


def test_the_worker_goes_on_and_the_sync_catches_up(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "cx.duckdb"
    settings.warehouse = WarehouseSettings(url=duckdb_url(path), interval_s=0.5, batch_size=100)
    settings.store = StoreSettings(retention_days=30)
    old = datetime.now(UTC) - timedelta(days=40)
    store = Store(settings.database_url)
    store.upgrade()
    bulk_fill(store, 30, start=old, prefix="old")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    worker = Worker.from_settings(settings)
    thread = threading.Thread(target=worker.run)
    try:
        assert holder.stdout.readline() == "held\n"
        before = failures()
        thread.start()
        produce(settings.kafka, [message(f"w{n}") for n in range(3)])
        wait_until(lambda: all(store.is_processed(f"w{n}") for n in range(3)), "the worker to triage")
        wait_until(lambda: failures() >= before + 2, "two failed syncs")
        assert stored(store) == 33 and synced_messages(store) is None  # nothing left the store
        assert any("warehouse sync" in r.getMessage() and "lock" in r.getMessage() for r in caplog.records)

        holder.kill()
        holder.wait()
        wait_until(lambda: synced_messages(store) is not None and synced_messages(store).startswith("w"),
                   "the lane to catch up", timeout_s=90)  # fmt: skip
        wait_until(lambda: stored(store, MessageRow.id.like("old%")) == 0, "the retention")
    finally:
        holder.kill()
        worker.stop()
        thread.join()
        store.close()
    ids = [row[0] for row in read(path, "SELECT id FROM triage_messages ORDER BY id")]
    assert ids[:1] == ["old00000000"] and len([i for i in ids if i.startswith("old")]) == 30
    assert {"w0", "w1", "w2"} <= set(ids) and len(ids) == len(set(ids))
    assert caplog.records and logging.WARNING in {r.levelno for r in caplog.records}
