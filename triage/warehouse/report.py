"""`triage report --from-warehouse URL`: the same report, drawn from the warehouse's tables.

The report's queries (triage/report/queries.py) are SQLAlchemy statements over the store's tables. Here
an in-memory DuckDB attaches the warehouse (a DuckDB file, read only, or the Parquet files by day) and
shows each warehouse table as a view with the store table's name and columns (a column the warehouse
does not keep is NULL), so the very same statements run through duckdb-engine: one set of queries, no
second report to keep in step. The views are DuckDB's own; nothing is written to the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    Integer,
    SmallInteger,
    create_engine,
    event,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from triage.store.tables import Base, DeliveryRow, IncidentRow, LabelRow, MessageRow, TriageRow
from triage.warehouse import schema
from triage.warehouse.schema import TableSpec
from triage.warehouse.targets.base import WarehouseUnavailable
from triage.warehouse.targets.local import DUCKDB_TYPES, local_path, quoted

VIEWS: tuple[tuple[type[Base], TableSpec], ...] = (
    (MessageRow, schema.MESSAGES),
    (TriageRow, schema.RESULTS),
    (DeliveryRow, schema.DELIVERIES),
    (IncidentRow, schema.INCIDENTS),
    (LabelRow, schema.LABELS),
)

# The report buckets times with PostgreSQL's to_char (its non-SQLite spelling): the two patterns it uses.
TO_CHAR = (
    "CREATE OR REPLACE TEMP MACRO to_char(moment, pattern) AS strftime(moment, CASE pattern "
    "WHEN 'YYYY-MM-DD' THEN '%Y-%m-%d' WHEN 'YYYY-MM-DD\"T\"HH24:00' THEN '%Y-%m-%dT%H:00' END)"
)


def _duckdb_type(column_type: Any) -> str:
    if isinstance(column_type, JSON):
        return "JSON"
    if isinstance(column_type, DateTime):
        return "TIMESTAMPTZ"
    if isinstance(column_type, Boolean):
        return "BOOLEAN"
    if isinstance(column_type, Integer | BigInteger | SmallInteger):
        return "BIGINT"
    if isinstance(column_type, Float):
        return "DOUBLE"
    return "VARCHAR"


class Warehouse:
    """Where the warehouse tables are read from: `duckdb:///FILE` or `parquet:///DIR`."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        scheme = url.partition("://")[0]
        if scheme == "duckdb":
            self.path = local_path(url, "duckdb", "PATH.duckdb")
        elif scheme == "parquet":
            self.path = local_path(url, "parquet", "DIR")
        else:
            raise ValueError(
                f"--from-warehouse {url!r}: the report reads duckdb:///FILE or parquet:///DIR "
                "(query BigQuery or Redshift there, see docs/warehouse.md)"
            )
        if not self.path.exists():
            raise WarehouseUnavailable(f"{self.path} does not exist (has `triage warehouse sync` run?)")
        self.scheme = scheme

    def prepare(self, connection: Any) -> None:
        """On each new DuckDB connection (a DB-API cursor: `execute` then `fetchall`): attach the warehouse
        and create the store-shaped views."""
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(TO_CHAR)
        if self.scheme == "duckdb":
            connection.execute(f"ATTACH '{_literal(self.path)}' AS warehouse (READ_ONLY)")
        for store_table, spec in VIEWS:
            source, present = self._source(connection, spec)
            columns = [self._column(column, present) for column in store_table.__table__.columns]
            if store_table is DeliveryRow:  # the incident's first case carries its summary
                columns[[c.name for c in DeliveryRow.__table__.columns].index("payload")] = (
                    "CASE WHEN w.incident_seq = 1 THEN json_object('summary', (SELECT i.summary FROM "
                    f"{self._source(connection, schema.INCIDENTS)[0]} AS i WHERE i.id = w.incident_id)) "
                    "END AS payload"
                )
            connection.execute(
                f"CREATE OR REPLACE VIEW {quoted(store_table.__tablename__)} AS "
                f"SELECT {', '.join(columns)} FROM {source} AS w"
            )

    def _source(self, connection: Any, spec: TableSpec) -> tuple[str, set[str]]:
        """The relation holding the table's rows and the columns it has; an empty typed relation for a
        table the warehouse does not have yet."""
        name = self.prefix + spec.name
        if self.scheme == "duckdb":
            connection.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_catalog = 'warehouse' AND table_name = ?",
                [name],
            )
            found = connection.fetchall()
            if found:
                return f"warehouse.{quoted(name)}", {row[0] for row in found}
        else:
            folder = self.path / name
            if any(folder.glob("*.parquet")):
                relation = f"read_parquet('{_literal(folder)}/*.parquet', union_by_name = true)"
                connection.execute(f"DESCRIBE SELECT * FROM {relation}")
                found = connection.fetchall()
                return relation, {row[0] for row in found}
        empty = ", ".join(f"NULL::{DUCKDB_TYPES[c.type]} AS {quoted(c.name)}" for c in spec.columns)
        return f"(SELECT {empty} WHERE false)", {c.name for c in spec.columns}

    @staticmethod
    def _column(column: Any, present: set[str]) -> str:
        if column.name in present:
            return f"w.{quoted(column.name)}"
        return f"NULL::{_duckdb_type(column.type)} AS {quoted(column.name)}"


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")


def engine(url: str, prefix: str) -> Engine:
    warehouse = Warehouse(url, prefix)
    made = create_engine("duckdb:///:memory:", poolclass=StaticPool)

    @event.listens_for(made, "connect")
    def _prepare(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            warehouse.prepare(cursor)
        finally:
            cursor.close()

    return made


@contextmanager
def session(url: str, prefix: str) -> Iterator[Session]:
    """A read-only session whose `messages`, `triage_results`, ... are the warehouse's tables. A DuckDB
    file held by a writer (a sync running) is WarehouseUnavailable."""
    made = engine(url, prefix)
    try:
        with Session(made) as opened:
            try:
                opened.connection()
            except Exception as error:
                if isinstance(getattr(error, "orig", error), duckdb.IOException):
                    raise WarehouseUnavailable(
                        f"{url}: {str(getattr(error, 'orig', error)).splitlines()[0]}"
                    ) from error
                raise
            yield opened
    finally:
        made.dispose()
