"""The worker's warehouse lane: every TRIAGE_WAREHOUSE__INTERVAL_S, sync, then apply the retention.

The warehouse being down never stops the worker: the lane logs one line, counts the failure, and the
next run goes on from the cursors. The target is opened for each run and closed after it, so a DuckDB
file is free for analysts between runs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from prometheus_client import Counter

from triage.settings import Settings
from triage.store import Store, StoreUnavailable
from triage.warehouse import retention
from triage.warehouse.sync import SETTLE_S, sync
from triage.warehouse.targets import WarehouseUnavailable, open_target

log = logging.getLogger(__name__)

ROWS_SYNCED = Counter("triage_warehouse_rows_synced", "Rows copied to the warehouse, by table", ["table"])
SYNC_FAILURES = Counter(
    "triage_warehouse_sync_failures", "Warehouse syncs that stopped (warehouse or store down)"
)
ROWS_RETIRED = Counter(
    "triage_store_rows_retired", "Rows deleted from the store by the retention, by table", ["table"]
)


@dataclass
class RunResult:
    synced: dict[str, int] = field(default_factory=dict)  # warehouse table (no prefix) -> rows sent
    retired: dict[str, int] = field(default_factory=dict)  # store table -> rows deleted


def run_once(store: Store, settings: Settings, settle_s: float = SETTLE_S) -> RunResult:
    """One sync of every table, then the retention (when TRIAGE_STORE__RETENTION_DAYS is set). Raises
    WarehouseUnavailable (and leaves the store as it was) when the warehouse does not answer."""
    target = open_target(settings.warehouse.url, settings.warehouse)
    try:
        synced = sync(store, target, settings, settle_s)
    finally:
        target.close()
    for table, count in synced.items():
        ROWS_SYNCED.labels(table).inc(count)
    result = RunResult(synced)
    if settings.store.retention_days is not None:
        result.retired = retention.apply(store, settings.warehouse.url, settings.store.retention_days)
        for table, count in result.retired.items():
            ROWS_RETIRED.labels(table).inc(count)
    return result


class WarehouseLane:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> WarehouseLane | None:
        """None unless both TRIAGE_WAREHOUSE__URL and TRIAGE_WAREHOUSE__INTERVAL_S are set."""
        if not settings.warehouse.url or not settings.warehouse.interval_s:
            return None
        return cls(settings, store)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="warehouse", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.wait(self.settings.warehouse.interval_s):
            self.run_once()

    def run_once(self) -> RunResult | None:
        """One run; None when it stopped on an outage (logged, counted, retried at the next interval)."""
        try:
            result = run_once(self.store, self.settings)
        except (WarehouseUnavailable, StoreUnavailable) as error:
            SYNC_FAILURES.inc()
            log.warning("warehouse sync: %s; trying again in %gs", error, self.settings.warehouse.interval_s)
            return None
        except Exception as error:  # a bad URL, credentials refused: the worker goes on all the same
            SYNC_FAILURES.inc()
            log.error("warehouse sync failed: %s", error)
            return None
        sent = sum(result.synced.values())
        if sent or result.retired:
            log.info("warehouse sync: %d rows sent, %d rows retired", sent, sum(result.retired.values()))
        return result
