"""The sync to a real DuckDB file: rows read back equal the store's, the text setting, changed rows sent
again, a re-sent batch stored once, a new column added to an existing table."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from tests.report.conftest import add, at
from tests.warehouse.conftest import read, warehouse_settings
from triage.store import Store
from triage.store.db import DeliveryUpdate
from triage.store.tables import DeliveryRow, IncidentRow, LabelRow, MessageRow, TriageRow
from triage.warehouse import schema
from triage.warehouse.sync import sync
from triage.warehouse.targets import open_target
from triage.warehouse.targets.duckdb import DuckDBTarget


def run_sync(store: Store, path: Path, **fields) -> dict[str, int]:
    settings = warehouse_settings(f"duckdb:///{path}", **fields)
    target = open_target(settings.warehouse.url, settings.warehouse)
    try:
        return sync(store, target, settings, settle_s=0)
    finally:
        target.close()


def utc_naive(moment):
    return None if moment is None else moment.replace(tzinfo=None)


def test_rows_read_back_equal_the_stores(filled: Store, tmp_path: Path):
    path = tmp_path / "cx.duckdb"
    counts = run_sync(filled, path)
    with filled.session() as session:
        messages = session.scalars(select(MessageRow).order_by(MessageRow.id)).all()
        results = session.scalars(select(TriageRow).order_by(TriageRow.message_id)).all()
        deliveries = session.scalars(select(DeliveryRow).order_by(DeliveryRow.id)).all()
        incidents = session.scalars(select(IncidentRow)).all()
        labels = session.scalars(select(LabelRow).order_by(LabelRow.id)).all()
        expected_messages = [
            (m.id, m.conversation_id, m.channel, m.customer_id, m.customer_tier, utc_naive(m.received_at))
            for m in messages
        ]
        expected_results = [
            (r.message_id, r.urgency, r.sentiment, r.category, r.degraded, r.cost_usd, r.receivers)
            for r in results
        ]
        expected_deliveries = [
            (d.id, d.message_id, d.receiver, d.status, d.incident_id, d.incident_seq, utc_naive(d.sent_at))
            for d in deliveries
        ]
        expected_labels = [(lb.id, lb.message_id, lb.field, lb.model_value, lb.team_value) for lb in labels]
        [incident] = incidents
        expected_incident = (incident.id, incident.uid, incident.case_count, incident.slack_ts, "Site down 1")
    assert counts == {
        "messages": len(messages),
        "results": len(results),
        "deliveries": len(deliveries),
        "incidents": 1,
        "labels": len(labels),
    }
    assert len(messages) == 15 and len(deliveries) > 15 and len(labels) == 8
    as_utc = "timezone('UTC', {})"
    assert [
        (*row[:5], row[5])
        for row in read(
            path,
            "SELECT id, conversation_id, channel, customer_id, customer_tier, "
            f"{as_utc.format('received_at')} FROM triage_messages ORDER BY id",
        )
    ] == expected_messages
    got_results = read(
        path,
        "SELECT message_id, urgency, sentiment, category, degraded, cost_usd, receivers "
        "FROM triage_results ORDER BY message_id",
    )
    assert [(*row[:6], json.loads(row[6])) for row in got_results] == expected_results
    assert (
        read(
            path,
            "SELECT id, message_id, receiver, status, incident_id, incident_seq, "
            f"{as_utc.format('sent_at')} FROM triage_deliveries ORDER BY id",
        )
        == expected_deliveries
    )
    assert read(path, "SELECT id, uid, case_count, slack_ts, summary FROM triage_incidents") == [
        expected_incident
    ]
    assert (
        read(path, "SELECT id, message_id, field, model_value, team_value FROM triage_labels ORDER BY id")
        == expected_labels
    )
    query = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?"
    types = dict(read(path, query, ["triage_messages"]))
    assert types["received_at"] == "TIMESTAMP WITH TIME ZONE" and types["kafka_offset"] == "BIGINT"


def test_the_text_setting_leaves_only_digests(store: Store, tmp_path: Path):
    add(store, "t1", at(20, 9), customer="c", conversation="k", alerts={"oncall": ("sent", 1)})
    with store.session() as session:
        message = session.get(MessageRow, "t1")
        message.parsed = {"id": "t1", "body": "My card 4111 was charged twice", "subject": "Refund please"}
        session.get(TriageRow, "t1").summary = "Customer charged twice"
    digest = hashlib.sha256(b"My card 4111 was charged twice").hexdigest()

    kept, dropped = tmp_path / "kept.duckdb", tmp_path / "dropped.duckdb"
    run_sync(store, kept)
    assert read(kept, "SELECT subject, body, body_digest FROM triage_messages") == [
        ("Refund please", "My card 4111 was charged twice", digest)
    ]
    assert read(kept, "SELECT summary FROM triage_results") == [("Customer charged twice",)]

    settings = warehouse_settings(f"duckdb:///{dropped}")
    settings = settings.model_copy(update={"store_original_text": False})
    target = open_target(settings.warehouse.url, settings.warehouse)
    sync(store, target, settings, settle_s=0)
    target.close()
    assert read(dropped, "SELECT subject, body, body_digest FROM triage_messages") == [(None, None, digest)]
    assert read(dropped, "SELECT summary FROM triage_results") == [(None,)]
    text = str(read(dropped, "SELECT * FROM triage_messages")) + str(
        read(dropped, "SELECT * FROM triage_results")
    )
    assert "charged" not in text and "Refund" not in text


def test_changed_rows_are_sent_again_and_stored_once(filled: Store, tmp_path: Path):
    path = tmp_path / "cx.duckdb"
    run_sync(filled, path)
    assert run_sync(filled, path) == dict.fromkeys(
        ("messages", "results", "deliveries", "incidents", "labels"), 0
    )
    [(pending_id,)] = read(path, "SELECT id FROM triage_deliveries WHERE status = 'pending'")
    filled.finish_deliveries([DeliveryUpdate(pending_id, "sent")])  # the store's own update path
    with filled.session() as session:
        incident = session.scalars(select(IncidentRow)).one()
        incident.resolved_at = at(20, 11)  # an ORM change, as the incident store makes it
    counts = run_sync(filled, path)
    assert counts["deliveries"] == 1 and counts["incidents"] == 1 and counts["messages"] == 0
    assert read(path, "SELECT status FROM triage_deliveries WHERE id = ?", [pending_id]) == [("sent",)]
    assert (
        read(path, "SELECT count(*), count(DISTINCT id) FROM triage_deliveries")[0]
        == (read(path, "SELECT count(*) FROM triage_deliveries")[0][0],) * 2
    )
    assert read(path, "SELECT count(*), count(resolved_at) FROM triage_incidents") == [(1, 1)]


def test_a_batch_sent_twice_is_stored_once(tmp_path: Path):
    target = DuckDBTarget(tmp_path / "cx.duckdb", "triage_")
    rows = [
        {"id": f"m{i}", "conversation_id": "k", "received_at": at(20, 9), "kafka_offset": i} for i in range(3)
    ]
    target.ensure_table(schema.MESSAGES)
    target.upsert(schema.MESSAGES, rows)
    target.upsert(schema.MESSAGES, [{**rows[0], "conversation_id": "changed"}, *rows[1:]])
    target.close()
    assert read(tmp_path / "cx.duckdb", "SELECT id, conversation_id FROM triage_messages ORDER BY id") == [
        ("m0", "changed"),
        ("m1", "k"),
        ("m2", "k"),
    ]


def test_a_new_column_is_added_to_the_existing_table(tmp_path: Path):
    older = replace(schema.LABELS, columns=tuple(c for c in schema.LABELS.columns if c.name != "stored_at"))
    path = tmp_path / "cx.duckdb"
    target = DuckDBTarget(path, "triage_")
    target.ensure_table(older)
    target.upsert(older, [{"id": 1, "message_id": "m1", "field": "urgency", "labelled_at": at(20, 9)}])
    [(oid,)] = target.connection.execute(
        "SELECT table_oid FROM duckdb_tables() WHERE table_name = 'triage_labels'"
    ).fetchall()
    target.ensure_table(schema.LABELS)
    target.upsert(
        schema.LABELS, [{"id": 2, "message_id": "m2", "field": "sentiment", "stored_at": at(20, 10)}]
    )
    [(oid_after,)] = target.connection.execute(
        "SELECT table_oid FROM duckdb_tables() WHERE table_name = 'triage_labels'"
    ).fetchall()
    target.close()
    assert oid_after == oid  # the same table, widened
    assert read(path, "SELECT id, message_id, timezone('UTC', stored_at) FROM triage_labels ORDER BY id") == [
        (1, "m1", None),
        (2, "m2", at(20, 10).replace(tzinfo=None)),
    ]
    assert [name for (name,) in read(path, "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'triage_labels' ORDER BY ordinal_position")][-1] == "stored_at"  # fmt: skip
