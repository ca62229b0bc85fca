"""The BigQuery target through the official client against a local stand-in of the REST API."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.bigquery_server import FakeBigQuery
from triage.settings import WarehouseSettings
from triage.warehouse.schema import DELIVERIES, MESSAGES, RESULTS, TableSpec
from triage.warehouse.targets import WarehouseUnavailable, open_target
from triage.warehouse.targets.bigquery import BigQueryTarget

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def bigquery() -> Iterator[FakeBigQuery]:
    with FakeBigQuery(project="acme-cx", datasets=("support",)) as server:
        yield server


def settings_for(server: FakeBigQuery, **changes: object) -> WarehouseSettings:
    return WarehouseSettings(
        url="bigquery://acme-cx/support",
        bigquery_anonymous=True,
        bigquery_endpoint=server.address,
        timeout_s=2.0,
        **changes,
    )


@pytest.fixture
def target(bigquery: FakeBigQuery) -> Iterator[BigQueryTarget]:
    opened = open_target("bigquery://acme-cx/support", settings_for(bigquery))
    assert isinstance(opened, BigQueryTarget)
    yield opened
    opened.close()


def result(message_id: str, urgency: str = "high", **changes: object) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(column.name for column in RESULTS.columns)
    row |= {
        "message_id": message_id,
        "urgency": urgency,
        "sentiment": "negative",
        "confidence": 0.75,
        "degraded": False,
        "prompt_tokens": 120,
        "receivers": ["slack:#support", "helpdesk"],
        "triaged_at": T0,
    }
    return row | changes


def test_ensure_table_creates_a_typed_table_partitioned_by_day_and_clustered_by_key(
    bigquery: FakeBigQuery, target: BigQueryTarget
) -> None:
    target.ensure_table(RESULTS)
    target.ensure_table(RESULTS)  # a second run changes nothing

    table = bigquery.table("triage_results")
    types = {field["name"]: field["type"] for field in table["schema"]["fields"]}
    assert types["message_id"] == "STRING"
    assert types["confidence"] == "FLOAT"
    assert types["degraded"] == "BOOLEAN"
    assert types["prompt_tokens"] == "INTEGER"
    assert types["receivers"] == "JSON"
    assert types["triaged_at"] == "TIMESTAMP"
    assert [field["name"] for field in table["schema"]["fields"]] == [c.name for c in RESULTS.columns]
    assert table["timePartitioning"] == {"type": "DAY", "field": "triaged_at"}
    assert table["clustering"] == {"fields": ["message_id"]}
    assert bigquery.calls("POST", r"/datasets/support/tables$") == 1
    assert bigquery.calls("PATCH", "") == 0


def test_anonymous_credentials_and_a_custom_endpoint(bigquery: FakeBigQuery, target: BigQueryTarget) -> None:
    target.ensure_table(DELIVERIES)
    assert bigquery.requests[0] == ("GET", "/bigquery/v2/projects/acme-cx/datasets/support")
    assert bigquery.authorizations and set(bigquery.authorizations) == {None}


def test_upsert_twice_leaves_each_key_once_with_the_new_values(
    bigquery: FakeBigQuery, target: BigQueryTarget
) -> None:
    target.ensure_table(RESULTS)
    target.upsert(RESULTS, [result("m1", "high"), result("m2", "low")])
    target.upsert(RESULTS, [result("m2", "urgent", degraded=True), result("m3", "normal")])
    target.upsert(RESULTS, [result("m2", "urgent", degraded=True), result("m3", "normal")])  # re-run

    rows = {row["message_id"]: row for row in bigquery.table_rows("triage_results")}
    assert len(bigquery.table_rows("triage_results")) == 3
    assert {key: row["urgency"] for key, row in rows.items()} == {
        "m1": "high",
        "m2": "urgent",
        "m3": "normal",
    }
    assert rows["m2"]["degraded"] is True
    assert rows["m1"]["triaged_at"] == T0
    assert rows["m1"]["receivers"] == ["slack:#support", "helpdesk"]
    assert rows["m1"]["prompt_tokens"] == 120
    # load jobs through the upload endpoint, never streaming inserts; no staging table left behind
    assert bigquery.calls("POST", r"^/upload/bigquery/v2/projects/acme-cx/jobs$") == 3
    assert bigquery.calls("POST", "insertAll") == 0
    assert set(bigquery.tables) == {("support", "triage_results")}


def test_a_batch_with_a_key_twice_keeps_the_last(bigquery: FakeBigQuery, target: BigQueryTarget) -> None:
    target.ensure_table(RESULTS)
    target.upsert(RESULTS, [result("m1", "low"), result("m1", "urgent")])
    assert [(r["message_id"], r["urgency"]) for r in bigquery.table_rows("triage_results")] == [
        ("m1", "urgent")
    ]


def test_a_batch_over_five_megabytes_goes_through_a_resumable_upload(
    bigquery: FakeBigQuery, target: BigQueryTarget
) -> None:
    target.ensure_table(MESSAGES)
    rows = [
        dict.fromkeys(c.name for c in MESSAGES.columns)
        | {"id": f"m{n}", "body": "x" * 10_000, "received_at": T0 + timedelta(days=n % 3), "kafka_offset": n}
        for n in range(600)
    ]
    target.upsert(MESSAGES, rows)
    stored = bigquery.table_rows("triage_messages")
    assert len(stored) == 600
    assert {row["kafka_offset"] for row in stored} == set(range(600))
    assert bigquery.calls("PUT", "^/upload-session/") >= 1


def test_a_new_column_is_added_to_the_schema_and_the_rows_are_kept(
    bigquery: FakeBigQuery, target: BigQueryTarget
) -> None:
    older = dataclasses.replace(RESULTS, columns=tuple(c for c in RESULTS.columns if c.name != "cost_usd"))
    target.ensure_table(older)
    target.upsert(older, [{k: v for k, v in result("m1").items() if k != "cost_usd"}])
    created = bigquery.table("triage_results")["creationTime"]

    target.ensure_table(RESULTS)
    target.upsert(RESULTS, [result("m2", cost_usd=0.002)])

    table = bigquery.table("triage_results")
    assert table["creationTime"] == created
    assert table["schema"]["fields"][-1]["name"] == "cost_usd"
    assert table["schema"]["fields"][-1]["type"] == "FLOAT"
    assert bigquery.calls("PATCH", "/tables/triage_results$") == 1
    assert bigquery.calls("DELETE", "/tables/triage_results$") == 0
    rows = {row["message_id"]: row for row in bigquery.table_rows("triage_results")}
    assert set(rows) == {"m1", "m2"}
    assert rows["m1"]["cost_usd"] is None and rows["m2"]["cost_usd"] == 0.002


def test_a_503_once_is_retried_by_the_client(bigquery: FakeBigQuery, target: BigQueryTarget) -> None:
    target.ensure_table(RESULTS)
    bigquery.fail_next(503)
    target.upsert(RESULTS, [result("m1")])
    assert len(bigquery.table_rows("triage_results")) == 1


@pytest.mark.parametrize("status", [503, 429])
def test_an_outage_is_warehouse_unavailable_and_the_next_run_catches_up(
    bigquery: FakeBigQuery, target: BigQueryTarget, status: int
) -> None:
    target.ensure_table(RESULTS)
    bigquery.fail_next(status, count=1000)
    with pytest.raises(WarehouseUnavailable, match=r"BigQuery acme-cx.support"):
        target.upsert(RESULTS, [result("m1")])
    bigquery._failures.clear()
    target.upsert(RESULTS, [result("m1")])
    assert len(bigquery.table_rows("triage_results")) == 1


def test_no_server_is_warehouse_unavailable(bigquery: FakeBigQuery) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(WarehouseUnavailable, match=r"no answer|Deadline|Timeout|retry"):
        open_target(
            "bigquery://acme-cx/support",
            settings_for(bigquery).model_copy(update={"bigquery_endpoint": f"http://127.0.0.1:{port}"}),
        )


def test_a_missing_dataset_says_so_and_is_not_transient(bigquery: FakeBigQuery) -> None:
    with pytest.raises(RuntimeError, match=r"not found.*Dataset acme-cx:reports.*bq mk --dataset") as raised:
        open_target("bigquery://acme-cx/reports", settings_for(bigquery))
    assert not isinstance(raised.value, WarehouseUnavailable)


def test_a_forbidden_dataset_names_the_roles_needed(bigquery: FakeBigQuery) -> None:
    bigquery.forbidden_datasets.add("support")
    with pytest.raises(RuntimeError, match=r"forbidden.*BigQuery Data Editor.*BigQuery Job User"):
        open_target("bigquery://acme-cx/support", settings_for(bigquery))


def test_a_row_the_load_job_refuses_is_a_clear_error(bigquery: FakeBigQuery, target: BigQueryTarget) -> None:
    target.ensure_table(RESULTS)
    with pytest.raises(RuntimeError, match="prompt_tokens") as raised:
        target.upsert(RESULTS, [result("m1", prompt_tokens="many")])
    assert not isinstance(raised.value, WarehouseUnavailable)
    assert bigquery.table_rows("triage_results") == []


def test_a_url_without_a_dataset_is_refused(bigquery: FakeBigQuery) -> None:
    with pytest.raises(ValueError, match="bigquery://PROJECT/DATASET"):
        open_target("bigquery://acme-cx", settings_for(bigquery))


def test_every_table_of_the_sync_can_be_created(bigquery: FakeBigQuery, target: BigQueryTarget) -> None:
    from triage.warehouse.schema import TABLES

    for spec in TABLES:
        target.ensure_table(spec)
    assert {name for _, name in bigquery.tables} == {f"triage_{spec.name}" for spec in TABLES}
    spec: TableSpec
    for spec in TABLES:
        assert bigquery.table(f"triage_{spec.name}")["timePartitioning"]["field"] == spec.day_column


def test_a_service_account_file_gets_a_token_and_every_call_carries_it(
    bigquery: FakeBigQuery, tmp_path: Path
) -> None:
    key_file = tmp_path / "triage-sa.json"
    key_file.write_text(json.dumps(bigquery.service_account()))
    settings = settings_for(bigquery).model_copy(
        update={"bigquery_anonymous": False, "bigquery_credentials_file": str(key_file)}
    )
    target = open_target("bigquery://acme-cx/support", settings)
    target.ensure_table(RESULTS)
    target.upsert(RESULTS, [result("m1")])
    target.close()

    assert len(bigquery.table_rows("triage_results")) == 1
    data_calls = [
        auth
        for (method, path), auth in zip(bigquery.requests, bigquery.authorizations, strict=True)
        if path != "/token"
    ]
    assert data_calls and all(auth and auth.removeprefix("Bearer ") in bigquery.tokens for auth in data_calls)


def test_anonymous_calls_to_a_server_that_wants_credentials_are_refused(
    bigquery: FakeBigQuery,
) -> None:
    bigquery.service_account()
    with pytest.raises(RuntimeError, match="credentials refused"):
        open_target("bigquery://acme-cx/support", settings_for(bigquery))


def test_an_unreadable_credentials_file_is_named(bigquery: FakeBigQuery, tmp_path: Path) -> None:
    (tmp_path / "key.json").write_text("{}")
    settings = settings_for(bigquery).model_copy(
        update={"bigquery_anonymous": False, "bigquery_credentials_file": str(tmp_path / "key.json")}
    )
    with pytest.raises(RuntimeError, match=r"BIGQUERY_CREDENTIALS_FILE.*not a readable service-account key"):
        open_target("bigquery://acme-cx/support", settings)
