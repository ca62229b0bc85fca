"""`sync` end to end into BigQuery (the REST stand-in) and Redshift (PostgreSQL through redshift_connector):
every store row once in the warehouse, a second run sending nothing, and a run from scratch (the cursors
lost, as after a crash before they were saved) leaving each row once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, delete, func, select, text

from tests.fakes.bigquery_server import FakeBigQuery
from tests.fakes.redshift_wire import RedshiftWire
from tests.warehouse.conftest import warehouse_settings
from triage.settings import Settings
from triage.store import Store
from triage.store.tables import DeliveryRow, IncidentRow, LabelRow, MessageRow, TriageRow, WarehouseCursorRow
from triage.warehouse.sync import sync
from triage.warehouse.targets import open_target

TABLES = {
    "messages": (MessageRow, "id"),
    "results": (TriageRow, "message_id"),
    "deliveries": (DeliveryRow, "id"),
    "incidents": (IncidentRow, "id"),
    "labels": (LabelRow, "id"),
}


def store_counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {
            name: session.scalar(select(func.count()).select_from(row)) for name, (row, _) in TABLES.items()
        }


def sync_three_times(store: Store, settings: Settings, counts: Callable[[], dict[str, int]]) -> None:
    target = open_target(settings.warehouse.url, settings.warehouse)
    try:
        first = sync(store, target, settings, settle_s=0)
        assert first == store_counts(store)
        assert counts() == store_counts(store)
        assert set(sync(store, target, settings, settle_s=0).values()) == {0}
        with store.session() as session:
            session.execute(delete(WarehouseCursorRow))
        assert sync(store, target, settings, settle_s=0) == first  # everything sent again...
        assert counts() == store_counts(store)  # ...and still once
    finally:
        target.close()


def test_sync_into_bigquery(filled: Store) -> None:
    with FakeBigQuery() as bigquery:
        settings = warehouse_settings(
            "bigquery://acme-cx/support", bigquery_anonymous=True, bigquery_endpoint=bigquery.address
        )
        sync_three_times(
            filled, settings, lambda: {name: len(bigquery.table_rows(f"triage_{name}")) for name in TABLES}
        )
        keys = {row["id"] for row in bigquery.table_rows("triage_messages")}
        with filled.session() as session:
            assert keys == set(session.scalars(select(MessageRow.id)))


@pytest.fixture
def warehouse_database(postgres_server: str) -> Iterator[str]:
    """A PostgreSQL database of its own for the warehouse (the store may be PostgreSQL too)."""
    name = f"warehouse_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_sync_into_redshift(filled: Store, warehouse_database: str) -> None:
    engine = create_engine(warehouse_database)

    def counts() -> dict[str, int]:
        """Rows per table; -1 when a key is there twice."""
        out = {}
        with engine.connect() as connection:
            for name, (_, key) in TABLES.items():
                rows, keys = connection.execute(
                    text(f"SELECT count(*), count(DISTINCT {key}) FROM triage_{name}")
                ).one()
                out[name] = rows if rows == keys else -1
        return out

    try:
        with RedshiftWire() as wire:
            url = f"redshift://postgres@127.0.0.1:{wire.port}/{engine.url.database}"
            sync_three_times(filled, warehouse_settings(url, redshift_ssl=False), counts)
    finally:
        engine.dispose()
