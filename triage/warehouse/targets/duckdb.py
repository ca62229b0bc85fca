"""DuckDB (`duckdb:///cx.duckdb`): one file on this machine, typed tables, upserts as delete-and-insert by
key in one transaction. DuckDB has no partitions: rows arrive in time order, so its zone maps on the day
column skip what a day's query does not need."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from triage.settings import WarehouseSettings
from triage.warehouse.schema import TableSpec
from triage.warehouse.targets.base import Row
from triage.warehouse.targets.local import (
    batch_select,
    column_definition,
    io_as_unavailable,
    key_match,
    local_path,
    quoted,
)


class DuckDBTarget:
    def __init__(self, path: Path, prefix: str) -> None:
        self.path, self.prefix = path, prefix
        with io_as_unavailable(path):  # locked by another process, an unwritable directory
            self.connection = duckdb.connect(str(path))
        self.connection.execute("SET TimeZone = 'UTC'")

    def table(self, spec: TableSpec) -> str:
        return quoted(self.prefix + spec.name)

    def ensure_table(self, spec: TableSpec) -> None:
        columns = ", ".join(column_definition(column) for column in spec.columns)
        with io_as_unavailable(self.path):
            self.connection.execute(f"CREATE TABLE IF NOT EXISTS {self.table(spec)} ({columns})")
            present = {
                name
                for (name,) in self.connection.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                    [self.prefix + spec.name],
                ).fetchall()
            }
            for column in spec.columns:
                if column.name not in present:
                    self.connection.execute(
                        f"ALTER TABLE {self.table(spec)} ADD COLUMN {column_definition(column)}"
                    )

    def upsert(self, spec: TableSpec, rows: Sequence[Row]) -> None:
        if not rows:
            return
        select, values = batch_select(spec, rows)
        names = ", ".join(quoted(column.name) for column in spec.columns)
        table = self.table(spec)
        with io_as_unavailable(self.path):
            self.connection.execute("BEGIN TRANSACTION")
            try:
                self.connection.execute(
                    f"DELETE FROM {table} AS t USING ({select}) AS batch "
                    f"WHERE {key_match(spec, 't', 'batch')}",
                    values,
                )
                self.connection.execute(f"INSERT INTO {table} ({names}) {select}", values)
                self.connection.execute("COMMIT")
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self.connection.close()


def open(url: str, settings: WarehouseSettings) -> DuckDBTarget:
    return DuckDBTarget(local_path(url, "duckdb", "PATH.duckdb"), settings.table_prefix)
