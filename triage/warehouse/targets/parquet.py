"""Parquet files by day (`parquet:///DIR`): DIR/<table>/<YYYY-MM-DD>.parquet, written with DuckDB.

A batch rewrites each day file it touches: the file's rows whose keys are not in the batch, then the
batch, to a temporary file renamed over the old one (a crash leaves the old file whole). A column added
to the schema appears in the files written from then on; read them with `union_by_name=true`."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import duckdb

from triage.settings import WarehouseSettings
from triage.warehouse.schema import TableSpec
from triage.warehouse.targets.base import Row
from triage.warehouse.targets.local import batch_select, io_as_unavailable, key_match, local_path, quoted

UNDATED = "undated"  # the file of rows whose day column is empty


class ParquetTarget:
    def __init__(self, directory: Path, prefix: str) -> None:
        self.directory, self.prefix = directory, prefix
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")

    def folder(self, spec: TableSpec) -> Path:
        return self.directory / f"{self.prefix}{spec.name}"

    def ensure_table(self, spec: TableSpec) -> None:
        with io_as_unavailable(self.directory):
            self.folder(spec).mkdir(parents=True, exist_ok=True)

    def upsert(self, spec: TableSpec, rows: Sequence[Row]) -> None:
        by_day: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            moment = row.get(spec.day_column)
            by_day[moment.strftime("%Y-%m-%d") if moment else UNDATED].append(row)
        with io_as_unavailable(self.folder(spec)):
            for day, day_rows in sorted(by_day.items()):
                self._rewrite(spec, self.folder(spec) / f"{day}.parquet", day_rows)

    def _rewrite(self, spec: TableSpec, path: Path, rows: Sequence[Row]) -> None:
        select, values = batch_select(spec, rows)
        batch = f"({select})"
        if path.exists():
            kept = (
                f"SELECT * FROM read_parquet('{_literal(path)}') AS t "
                f"WHERE NOT EXISTS (SELECT 1 FROM {batch} AS batch WHERE {key_match(spec, 't', 'batch')})"
            )
            query = f"{kept} UNION ALL BY NAME {select}"
        else:
            query = select
        order = ", ".join(quoted(name) for name in (spec.day_column, *spec.key))
        temporary = path.with_suffix(".parquet.tmp")
        self.connection.execute(
            f"COPY (SELECT * FROM ({query}) ORDER BY {order}) TO '{_literal(temporary)}' (FORMAT parquet)",
            values,
        )
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)

    def close(self) -> None:
        self.connection.close()


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")


def open(url: str, settings: WarehouseSettings) -> ParquetTarget:
    return ParquetTarget(local_path(url, "parquet", "DIR"), settings.table_prefix)
