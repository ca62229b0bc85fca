"""Rows/s and CPU per row of the BigQuery and Redshift targets, our side only.

    python benchmarks/warehouse_targets.py --rows 50000 --batch 5000

BigQuery: the official client against the REST stand-in of the tests (tests/fakes/bigquery_server.py,
jobs done at once); Redshift: redshift_connector against the local PostgreSQL (127.0.0.1:5432, a fresh
database) through tests/fakes/redshift_wire.py. The stand-in and the wire run in a child process, so
the CPU counted (`time.process_time()` of this process) is the target's: building the batch, the
client library, the HTTP or wire protocol. Neither figure is the real service's speed: a BigQuery load
job and MERGE take seconds on Google's side, a Redshift cluster's commit takes what it takes.
Each table is written twice with the same keys: `new` inserts, `again` replaces every row.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def serve() -> None:
    """The BigQuery stand-in and the Redshift wire, until stdin closes."""
    from tests.fakes.bigquery_server import FakeBigQuery
    from tests.fakes.redshift_wire import RedshiftWire

    with FakeBigQuery() as bigquery, RedshiftWire("127.0.0.1", 5432) as wire:
        bigquery.running_polls = 0
        print(json.dumps({"bigquery": bigquery.address, "redshift_port": wire.port}), flush=True)
        sys.stdin.read()


def rows(count: int) -> list[dict]:
    from triage.warehouse.schema import MESSAGES

    start = datetime(2026, 3, 1, tzinfo=UTC)
    body = "Hello, my order #48213 arrived damaged and the replacement never came. " * 4
    return [
        dict.fromkeys(column.name for column in MESSAGES.columns)
        | {
            "id": f"msg-{n:08d}",
            "conversation_id": f"conv-{n // 3}",
            "channel": "email",
            "customer_id": f"cust-{n % 997}",
            "customer_tier": "enterprise" if n % 5 == 0 else "standard",
            "created_at": start + timedelta(seconds=n),
            "received_at": start + timedelta(seconds=n, milliseconds=250),
            "subject": "Damaged order",
            "body": body,
            "body_digest": uuid.uuid5(uuid.NAMESPACE_OID, str(n)).hex * 2,
            "kafka_topic": "support.messages",
            "kafka_partition": n % 6,
            "kafka_offset": n,
        }
        for n in range(count)
    ]


def measure(name: str, target: object, data: list[dict], batch: int) -> None:
    from triage.warehouse.schema import MESSAGES

    target.ensure_table(MESSAGES)  # type: ignore[attr-defined]
    for run in ("new", "again"):
        wall, cpu = time.perf_counter(), time.process_time()
        for first in range(0, len(data), batch):
            target.upsert(MESSAGES, data[first : first + batch])  # type: ignore[attr-defined]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{name:9} {run:6} {len(data):>7} rows  {len(data) / wall:>9,.0f} rows/s  "
            f"{cpu / len(data) * 1e6:>6.1f} µs CPU/row"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument(
        "--batch", type=int, default=5000, help="rows per upsert (TRIAGE_WAREHOUSE__BATCH_SIZE)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    from sqlalchemy import create_engine, text

    from triage.settings import WarehouseSettings
    from triage.warehouse.targets import open_target

    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    database = f"warehouse_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    try:
        where = json.loads(child.stdout.readline())  # type: ignore[union-attr]
        data = rows(args.rows)
        settings = WarehouseSettings(
            url="x", bigquery_anonymous=True, bigquery_endpoint=where["bigquery"], redshift_ssl=False
        )
        bigquery = open_target("bigquery://acme-cx/support", settings)
        measure("bigquery", bigquery, data, args.batch)
        bigquery.close()

        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        redshift = open_target(f"redshift://postgres@127.0.0.1:{where['redshift_port']}/{database}", settings)
        measure("redshift", redshift, data, args.batch)
        redshift.close()
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.wait()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
