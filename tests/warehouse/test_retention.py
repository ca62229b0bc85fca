"""TRIAGE_STORE__RETENTION_DAYS: old rows leave the store once, and only once, the warehouse has them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from tests.report.conftest import at
from tests.warehouse.conftest import add_incident, fill, read, warehouse_settings
from tests.warehouse.helpers import bulk_fill, duckdb_url
from triage.store import Store
from triage.store.db import DeliveryUpdate
from triage.store.feedback import Correction, FeedbackStore
from triage.store.tables import DeliveryRow, IncidentRow, LabelRow, MessageRow, TriageRow
from triage.warehouse import retention
from triage.warehouse.lane import run_once

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=3)


def counts(store: Store) -> tuple[int, int, int, int]:
    with store.session(read_only=True) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table))
            for table in (MessageRow, TriageRow, DeliveryRow, LabelRow)
        )


def label(message_id: str) -> LabelRow:
    return LabelRow(
        message_id=message_id, field="urgency", model_value="low", team_value="urgent", source="slack",
        person_id="U1", event_key=f"slack:{message_id}", labelled_at=OLD,
    )  # fmt: skip


def test_old_rows_leave_only_after_the_sync(store: Store, tmp_path: Path):
    bulk_fill(store, 50, start=OLD, prefix="old")
    bulk_fill(store, 20, start=RECENT, prefix="new")
    FeedbackStore(store).save([Correction([label("old00000001")])])
    url = duckdb_url(tmp_path / "cx.duckdb")
    assert retention.apply(store, url, days=30) == {}  # nothing is in the warehouse yet
    assert counts(store) == (70, 70, 70, 1)

    result = run_once(store, warehouse_settings(url, retention_days=30), settle_s=0)
    assert result.synced["messages"] == 70
    assert result.retired == {"messages": 50, "triage_results": 50, "deliveries": 50, "labels": 1}
    assert counts(store) == (20, 20, 20, 0)
    path = tmp_path / "cx.duckdb"
    assert read(path, "SELECT count(*) FROM triage_messages WHERE id LIKE 'old%'") == [(50,)]
    assert read(path, "SELECT count(*) FROM triage_labels") == [(1,)]


def test_a_row_changed_after_the_sync_keeps_its_message_until_the_next(store: Store, tmp_path: Path):
    bulk_fill(store, 3, start=OLD, prefix="old")
    url = duckdb_url(tmp_path / "cx.duckdb")
    run_once(store, warehouse_settings(url), settle_s=0)  # no retention set: everything stays
    assert counts(store) == (3, 3, 3, 0)
    with store.session() as session:
        changed, pending = session.scalars(select(DeliveryRow.id).order_by(DeliveryRow.id).limit(2)).all()
    store.finish_deliveries([DeliveryUpdate(changed, "failed", "410 gone")])  # changed after the sync
    with store.session() as session:
        session.get(DeliveryRow, pending).status = "pending"  # and one not finished at all

    assert retention.apply(store, url, days=30) == {
        "messages": 1,
        "triage_results": 1,
        "deliveries": 1,
    }  # only the third message: the other two wait
    result = run_once(store, warehouse_settings(url, retention_days=30), settle_s=0)
    assert result.synced["deliveries"] == 2
    assert result.retired["messages"] == 1  # the failed one is in the warehouse now; the pending one stays
    with store.session(read_only=True) as session:
        assert session.scalars(select(DeliveryRow.status)).all() == ["pending"]
    assert read(
        tmp_path / "cx.duckdb", "SELECT status, detail FROM triage_deliveries WHERE id = ?", [changed]
    ) == [("failed", "410 gone")]


def test_another_warehouses_cursor_does_not_count(store: Store, tmp_path: Path):
    bulk_fill(store, 5, start=OLD, prefix="old")
    run_once(store, warehouse_settings(duckdb_url(tmp_path / "a.duckdb")), settle_s=0)
    assert retention.apply(store, duckdb_url(tmp_path / "b.duckdb"), days=30) == {}
    assert counts(store) == (5, 5, 5, 0)


def test_an_old_incident_leaves_with_its_last_case(store: Store, tmp_path: Path):
    fill(store)  # "old" on 2026-11-01, the rest from 2026-11-13; an incident on 2026-11-20
    old_incident = add_incident(store, ["old"], at(1, 9), summary="Old outage")
    url = duckdb_url(tmp_path / "cx.duckdb")
    late = at(20, 12)
    assert retention.apply(store, url, days=10, now=late) == {}
    run_once(store, warehouse_settings(url), settle_s=0)
    deleted = retention.apply(store, url, days=10, now=late)
    assert deleted == {"labels": 1, "deliveries": 2, "triage_results": 1, "messages": 1, "incidents": 1}
    with store.session(read_only=True) as session:
        assert session.get(IncidentRow, old_incident) is None
        assert session.scalar(select(func.count()).select_from(IncidentRow)) == 1
        assert session.get(MessageRow, "old") is None and session.get(MessageRow, "a1") is not None
    assert read(
        tmp_path / "cx.duckdb", "SELECT summary FROM triage_incidents WHERE id = ?", [old_incident]
    ) == [("Old outage 1",)]
