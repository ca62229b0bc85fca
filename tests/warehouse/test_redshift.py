"""The Redshift target through redshift_connector against the local PostgreSQL (Redshift's wire).

PostgreSQL refuses the driver's Redshift-only start-up parameters, so the connection goes through
tests/fakes/redshift_wire.py, which drops them and passes everything else through. On PostgreSQL the
target detects the server and uses its documented fallback (JSON as VARCHAR, no DISTKEY/SORTKEY); the
Redshift-only SQL (SUPER, JSON_PARSE, DISTKEY/SORTKEY) is checked as text.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy
from sqlalchemy import create_engine, text

from tests.fakes.redshift_wire import RedshiftWire
from triage.settings import WarehouseSettings
from triage.warehouse.schema import MESSAGES, RESULTS, TABLES
from triage.warehouse.targets import WarehouseUnavailable, open_target
from triage.warehouse.targets.redshift import RedshiftTarget, create_sql

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def wire() -> Iterator[RedshiftWire]:
    with RedshiftWire("127.0.0.1", 5432) as proxy:
        yield proxy


@pytest.fixture
def database(postgres_url: str) -> Iterator[sqlalchemy.Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


def url_for(wire: RedshiftWire, database: sqlalchemy.Engine) -> str:
    return f"redshift://postgres@127.0.0.1:{wire.port}/{database.url.database}"


def settings(**changes: object) -> WarehouseSettings:
    return WarehouseSettings(url="x", redshift_ssl=False, timeout_s=5, **changes)


@pytest.fixture
def target(wire: RedshiftWire, database: sqlalchemy.Engine) -> Iterator[RedshiftTarget]:
    opened = open_target(url_for(wire, database), settings())
    assert isinstance(opened, RedshiftTarget)
    yield opened
    opened.close()


def result(message_id: str, urgency: str = "high", **changes: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(column.name for column in RESULTS.columns)
    row |= {
        "message_id": message_id,
        "urgency": urgency,
        "confidence": 0.75,
        "degraded": False,
        "prompt_tokens": 120,
        "receivers": ["slack:#support", "helpdesk"],
        "triaged_at": T0,
    }
    return row | changes


def read(database: sqlalchemy.Engine, query: str) -> list[sqlalchemy.Row]:
    with database.connect() as connection:
        return list(connection.execute(text(query)))


def test_the_server_is_detected_as_postgresql_through_the_redshift_driver(
    wire: RedshiftWire, target: RedshiftTarget
) -> None:
    assert target.redshift is False
    assert b"client_protocol_version" in wire.dropped


def test_ensure_table_creates_the_typed_table_with_its_key(
    target: RedshiftTarget, database: sqlalchemy.Engine
) -> None:
    target.ensure_table(RESULTS)
    target.ensure_table(RESULTS)  # a second run changes nothing

    columns = read(
        database,
        "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = 'triage_results' ORDER BY ordinal_position",
    )
    types = {name: (kind, length) for name, kind, length in columns}
    assert [name for name, _, _ in columns] == [c.name for c in RESULTS.columns]
    assert types["message_id"] == ("character varying", 65535)
    assert types["prompt_tokens"][0] == "bigint"
    assert types["confidence"][0] == "double precision"
    assert types["degraded"][0] == "boolean"
    assert types["triaged_at"][0] == "timestamp without time zone"
    assert types["receivers"] == ("character varying", 65535)  # SUPER's fallback on PostgreSQL
    key = read(
        database,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = 'public.triage_results'::regclass AND i.indisprimary",
    )
    assert [name for (name,) in key] == ["message_id"]


def test_the_redshift_ddl_uses_super_distkey_and_sortkey() -> None:
    statement = create_sql(RESULTS, '"public"."triage_results"', redshift=True)
    assert '"receivers" SUPER' in statement
    assert '"message_id" VARCHAR(65535)' in statement
    assert '"prompt_tokens" BIGINT' in statement
    assert '"confidence" DOUBLE PRECISION' in statement
    assert '"triaged_at" TIMESTAMP' in statement
    assert statement.endswith(' DISTKEY("message_id") SORTKEY("triaged_at")')
    for postgres_only in ("JSONB", "TEXT", "SERIAL", "TIMESTAMPTZ", "ON CONFLICT", "GENERATED"):
        assert postgres_only not in statement.upper()
    assert "DISTKEY" not in create_sql(RESULTS, "t", redshift=False)


def test_upsert_twice_leaves_each_key_once_with_the_new_values(
    target: RedshiftTarget, database: sqlalchemy.Engine
) -> None:
    target.ensure_table(RESULTS)
    target.upsert(RESULTS, [result("m1", "high"), result("m2", "low")])
    target.upsert(RESULTS, [result("m2", "urgent", degraded=True), result("m3", "normal")])
    target.upsert(RESULTS, [result("m2", "urgent", degraded=True), result("m3", "normal")])  # re-run

    rows = read(
        database,
        "SELECT message_id, urgency, degraded, receivers, triaged_at, prompt_tokens FROM triage_results "
        "ORDER BY message_id",
    )
    assert [(r.message_id, r.urgency, r.degraded) for r in rows] == [
        ("m1", "high", False),
        ("m2", "urgent", True),
        ("m3", "normal", False),
    ]
    assert json.loads(rows[0].receivers) == ["slack:#support", "helpdesk"]
    assert rows[0].triaged_at == T0.replace(tzinfo=None)  # UTC, as TIMESTAMP holds it
    assert rows[0].prompt_tokens == 120
    temp = read(database, "SELECT count(*) FROM pg_class WHERE relname LIKE 'triage_stage_%'")
    assert temp[0][0] == 0


def test_a_batch_with_a_key_twice_keeps_the_last(target: RedshiftTarget, database: sqlalchemy.Engine) -> None:
    target.ensure_table(RESULTS)
    target.upsert(RESULTS, [result("m1", "low"), result("m1", "urgent")])
    assert read(database, "SELECT message_id, urgency FROM triage_results") == [("m1", "urgent")]


def test_a_batch_larger_than_one_insert_statement(
    target: RedshiftTarget, database: sqlalchemy.Engine
) -> None:
    target.ensure_table(MESSAGES)
    rows = [
        dict.fromkeys(c.name for c in MESSAGES.columns)
        | {"id": f"m{n}", "body": f"body {n}", "received_at": T0 + timedelta(minutes=n), "kafka_offset": n}
        for n in range(3000)  # 45,000 parameters: more than one statement may carry
    ]
    target.upsert(MESSAGES, rows)
    count, offsets = read(database, "SELECT count(*), sum(kafka_offset) FROM triage_messages")[0]
    assert count == 3000 and offsets == sum(range(3000))


def test_a_body_over_65535_bytes_is_cut_at_a_character_boundary(
    target: RedshiftTarget, database: sqlalchemy.Engine
) -> None:
    target.ensure_table(MESSAGES)
    row = dict.fromkeys(c.name for c in MESSAGES.columns) | {
        "id": "m1",
        "body": "é" * 40_000,
        "received_at": T0,
    }
    target.upsert(MESSAGES, [row])
    (body,) = read(database, "SELECT body FROM triage_messages")[0]
    assert len(body.encode()) <= 65535 and set(body) == {"é"} and len(body) == 32767


def test_a_new_column_is_added_without_a_rebuild(target: RedshiftTarget, database: sqlalchemy.Engine) -> None:
    older = dataclasses.replace(RESULTS, columns=tuple(c for c in RESULTS.columns if c.name != "cost_usd"))
    target.ensure_table(older)
    target.upsert(older, [{k: v for k, v in result("m1").items() if k != "cost_usd"}])
    (oid,) = read(database, "SELECT 'public.triage_results'::regclass::oid")[0]

    target.ensure_table(RESULTS)
    target.upsert(RESULTS, [result("m2", cost_usd=0.002)])

    assert read(database, "SELECT 'public.triage_results'::regclass::oid")[0][0] == oid
    rows = read(database, "SELECT message_id, cost_usd FROM triage_results ORDER BY message_id")
    assert rows == [("m1", None), ("m2", 0.002)]


def test_a_failed_batch_leaves_the_table_as_it_was(
    target: RedshiftTarget, database: sqlalchemy.Engine
) -> None:
    target.ensure_table(RESULTS)
    target.upsert(RESULTS, [result("m1", "high")])
    with pytest.raises(RuntimeError, match="writing") as raised:
        target.upsert(RESULTS, [result("m1", "low"), result("m2", prompt_tokens="many")])
    assert not isinstance(raised.value, WarehouseUnavailable)
    assert read(database, "SELECT message_id, urgency FROM triage_results") == [("m1", "high")]
    target.upsert(RESULTS, [result("m2")])  # the connection is usable again
    assert len(read(database, "SELECT 1 FROM triage_results")) == 2


def test_an_outage_is_warehouse_unavailable_and_the_next_run_reconnects(
    wire: RedshiftWire, target: RedshiftTarget, database: sqlalchemy.Engine
) -> None:
    target.ensure_table(RESULTS)
    wire.down()
    with pytest.raises(WarehouseUnavailable, match="no answer"):
        target.upsert(RESULTS, [result("m1")])
    with pytest.raises(WarehouseUnavailable):
        target.upsert(RESULTS, [result("m1")])  # still down: connecting fails the same way
    wire.up()
    target.upsert(RESULTS, [result("m1")])
    assert read(database, "SELECT message_id FROM triage_results") == [("m1",)]


def test_a_missing_database_says_so(wire: RedshiftWire) -> None:
    with pytest.raises(RuntimeError, match="create the database first") as raised:
        open_target(f"redshift://postgres@127.0.0.1:{wire.port}/no_such_db_h29b", settings())
    assert not isinstance(raised.value, WarehouseUnavailable)


def test_a_missing_schema_says_so(wire: RedshiftWire, database: sqlalchemy.Engine) -> None:
    with pytest.raises(RuntimeError, match="schema 'analytics' not found"):
        open_target(url_for(wire, database), settings(redshift_schema="analytics"))


def test_another_schema_is_used_when_set(wire: RedshiftWire, database: sqlalchemy.Engine) -> None:
    with database.begin() as connection:
        connection.execute(text("CREATE SCHEMA analytics"))
    target = open_target(url_for(wire, database), settings(redshift_schema="analytics", table_prefix="cx_"))
    target.ensure_table(RESULTS)
    target.upsert(RESULTS, [result("m1")])
    target.close()
    assert read(database, "SELECT message_id FROM analytics.cx_results") == [("m1",)]


def test_a_password_in_the_url_is_refused() -> None:
    with pytest.raises(ValueError, match="TRIAGE_WAREHOUSE__REDSHIFT_PASSWORD"):
        open_target("redshift://cx:secret@example.com:5439/dev", settings())


def test_every_table_of_the_sync_can_be_created(target: RedshiftTarget, database: sqlalchemy.Engine) -> None:
    for spec in TABLES:
        target.ensure_table(spec)
    names = read(database, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    assert {name for (name,) in names} == {f"triage_{spec.name}" for spec in TABLES}
