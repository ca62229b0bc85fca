"""Sync a store of synthetic triaged messages to DuckDB, time the report from both, then the retention.

    python benchmarks/warehouse_sync.py --messages 1000000 --days 60 \
        --out-db /tmp/warehouse-1m.db --warehouse /tmp/warehouse-1m.duckdb

The store is filled as benchmarks/report_scale.py fills it (conversations of 1-5 messages over `--days`,
one results-topic delivery per message and alerts for some); `--no-seed` uses a store filled earlier.
Prints: rows synced per table, rows/s and CPU per row (the process's CPU time, DuckDB's threads
included); the report's whole page from the store and from DuckDB per window (median of `--repeat`,
each on fresh connections); then the retention of `--retain-days` (rows deleted, seconds, the store's
size before and after, and after VACUUM for SQLite). The retention deletes: run it last.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from pathlib import Path

from report_scale import seed  # benchmarks/ is on sys.path when this file is run
from sqlalchemy import text

from triage.report.html import render_html
from triage.report.queries import build_report
from triage.report.window import Window
from triage.settings import Settings, WarehouseSettings
from triage.store import Store
from triage.warehouse import report, retention
from triage.warehouse.sync import sync
from triage.warehouse.targets import open_target


def store_size(store: Store) -> int:
    """Bytes: the SQLite file (and its WAL), or the PostgreSQL database."""
    if store.engine.dialect.name == "sqlite":
        path = Path(store.engine.url.database)
        return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    with store.engine.connect() as connection:
        return connection.scalar(text("SELECT pg_database_size(current_database())"))


def time_sync(store: Store, settings: Settings) -> None:
    target = open_target(settings.warehouse.url, settings.warehouse)
    wall, cpu = time.perf_counter(), time.process_time()
    counts = sync(store, target, settings, settle_s=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    target.close()
    rows = sum(counts.values())
    print("synced:", ", ".join(f"{table} {count:,}" for table, count in counts.items()))
    speed = f"{rows / wall:,.0f} rows/s, CPU {cpu:.1f} s = {cpu / rows * 1e6:.1f} µs/row"
    print(f"{rows:,} rows in {wall:.1f} s: {speed}")


def page_seconds(session_of, window: Window) -> float:
    started = time.perf_counter()
    with session_of() as session:
        render_html(build_report(session, window))
    return time.perf_counter() - started


def time_reports(store_url: str, warehouse_url: str, windows: list[str], repeat: int) -> None:
    for since in windows:
        window = Window.last(since)

        def from_store():
            store = Store(store_url)
            return _closing(store)

        stored = statistics.median(page_seconds(from_store, window) for _ in range(repeat))
        warehoused = statistics.median(
            page_seconds(lambda: report.session(warehouse_url, "triage_"), window) for _ in range(repeat)
        )
        print(f"report, last {since}: store {stored:.2f} s, DuckDB {warehoused:.2f} s")


class _closing:
    """A store's session that closes the store after it (a fresh one per page, as `triage report`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self):
        self.context = self.store.session(read_only=True)
        return self.context.__enter__()

    def __exit__(self, *exc):
        try:
            return self.context.__exit__(*exc)
        finally:
            self.store.close()


def time_retention(store: Store, warehouse_url: str, days: int) -> None:
    before = store_size(store)
    started = time.perf_counter()
    deleted = retention.apply(store, warehouse_url, days)
    took = time.perf_counter() - started
    after = store_size(store)
    print(f"retention {days} days: {deleted} in {took:.1f} s")
    print(f"store: {before / 1e6:,.0f} MB before, {after / 1e6:,.0f} MB after", end="")
    if store.engine.dialect.name == "sqlite":
        store.engine.dispose()  # no pooled connection may hold a read transaction during VACUUM
        connection = sqlite3.connect(store.engine.url.database, isolation_level=None)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("VACUUM")
        connection.close()
        print(f", {store_size(store) / 1e6:,.0f} MB after VACUUM")
    else:
        print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=60.0, help="spread the messages over this many days")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--out-db", type=Path, default=Path("/tmp/warehouse-1m.db"))
    parser.add_argument("--database-url", help="instead of --out-db, e.g. a PostgreSQL database")
    parser.add_argument("--warehouse", type=Path, default=Path("/tmp/warehouse-1m.duckdb"))
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--since", nargs="+", default=["7d", "30d", "60d"], help="report windows to time")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--retain-days", type=int, default=30)
    parser.add_argument("--no-seed", dest="fill", action="store_false", help="use the store as it is")
    args = parser.parse_args()

    store_url = args.database_url or f"sqlite:///{args.out_db}"
    warehouse_url = f"duckdb:///{args.warehouse.resolve()}"
    store = Store(store_url)
    store.upgrade()
    if args.fill:
        took = seed(store, args.messages, args.days, args.seed)
        print(f"inserted {args.messages:,} messages into {store.safe_url} in {took:.1f} s")
    settings = Settings(
        database_url=store_url, warehouse=WarehouseSettings(url=warehouse_url, batch_size=args.batch_size)
    )
    time_sync(store, settings)
    print(f"DuckDB file: {args.warehouse.stat().st_size / 1e6:,.0f} MB")
    time_reports(store_url, warehouse_url, args.since, args.repeat)
    time_retention(store, warehouse_url, args.retain_days)
    store.close()


if __name__ == "__main__":
    main()
