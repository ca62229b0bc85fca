"""Stores (SQLite and PostgreSQL) with messages, results, deliveries, an incident and labels, and the
settings that point `triage warehouse sync` at a DuckDB file or a Parquet directory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import update

from tests.report.conftest import add, at, fill_labels, fill_week
from triage.settings import Settings, StoreSettings, WarehouseSettings
from triage.store import Store
from triage.store.tables import DeliveryRow, IncidentRow


def warehouse_settings(url: str, database_url: str = "sqlite:///triage.db", **fields) -> Settings:
    store = StoreSettings(retention_days=fields.pop("retention_days", None))
    return Settings(database_url=database_url, warehouse=WarehouseSettings(url=url, **fields), store=store)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """An empty, migrated store: SQLite or PostgreSQL."""
    store = Store(database_url)
    store.upgrade()
    yield store
    store.close()


def add_incident(store: Store, members: list[str], first: datetime, summary: str = "Site down") -> int:
    """An incident over the `oncall` deliveries of `members` (messages already added), as the store's
    grouping leaves it: the first case's payload carries the summary."""
    with store.session() as session:
        incident = IncidentRow(
            uid=f"{members[0]:x<32}"[:32], receiver="oncall",
            group_key='route.routes[1] {"category": "outage"}', mode="alert", first_case_at=first,
            last_case_at=first + timedelta(minutes=len(members)),
            closes_at=first + timedelta(minutes=30), case_count=len(members), ticket_count=0,
            top_urgency="urgent", alerted_count=len(members), interval_s=60, centroid_n=0,
            update_attempts=0, slack_ts="1795.000100",
        )  # fmt: skip
        session.add(incident)
        session.flush()
        for seq, message_id in enumerate(members, start=1):
            session.execute(
                update(DeliveryRow)
                .where((DeliveryRow.message_id == message_id) & (DeliveryRow.receiver == "oncall"))
                .values(incident_id=incident.id, incident_seq=seq, payload={"summary": f"{summary} {seq}"})
            )
        return incident.id


def fill(store: Store) -> None:
    """tests/report's week and labels, and one incident of three cases on 2026-11-20."""
    fill_week(store)
    fill_labels(store)
    for i, customer in enumerate(["c1", "c2", "c2"]):
        add(
            store,
            f"o{i}",
            at(20, 10, i),
            customer=customer,
            conversation=f"k{i}",
            alerts={"oncall": ("sent", 1)},
        )
    add_incident(store, ["o0", "o1", "o2"], at(20, 10))


@pytest.fixture
def filled(store: Store) -> Store:
    fill(store)
    return store


def read(path: Path, query: str, parameters: list | None = None) -> list[tuple]:
    """Rows from the DuckDB file, in a connection of their own (closed after: the file stays free)."""
    connection = duckdb.connect(str(path), read_only=True)
    try:
        connection.execute("SET TimeZone = 'UTC'")
        return connection.execute(query, parameters or []).fetchall()
    finally:
        connection.close()
