"""What the DuckDB and Parquet targets share: their URLs, DuckDB's column types, and batches as columns."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from triage.warehouse.schema import Column, TableSpec
from triage.warehouse.targets.base import Row, WarehouseUnavailable

DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INTEGER": "BIGINT",
    "FLOAT": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "JSON": "JSON",
}


def local_path(url: str, scheme: str, what: str) -> Path:
    """`duckdb:///cx.duckdb` -> cx.duckdb (relative), `duckdb:////var/cx.duckdb` -> /var/cx.duckdb, as
    SQLAlchemy spells SQLite files."""
    prefix = f"{scheme}:///"
    if not url.startswith(prefix) or url == prefix:
        raise ValueError(
            f"warehouse URL {url!r}: expected {scheme}:///{what} (a local path; four slashes: absolute)"
        )
    return Path(url[len(prefix) :])


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def column_definition(column: Column) -> str:
    return f"{quoted(column.name)} {DUCKDB_TYPES[column.type]}"


def batch_select(spec: TableSpec, rows: Sequence[Row]) -> tuple[str, list[list[Any]]]:
    """A SELECT producing `rows` as a relation with the spec's columns and types, and its parameters:
    one list per column, unnested side by side (thousands of rows in one statement, no per-row call)."""
    parts, values = [], []
    for n, column in enumerate(spec.columns, start=1):
        kind = DUCKDB_TYPES[column.type]
        parts.append(f"unnest(${n}::{kind}[]) AS {quoted(column.name)}")
        if column.type == "JSON":
            values.append(
                [None if row.get(column.name) is None else json.dumps(row[column.name]) for row in rows]
            )
        else:
            values.append([row.get(column.name) for row in rows])
    return "SELECT " + ", ".join(parts), values


def key_match(spec: TableSpec, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{quoted(key)} = {right}.{quoted(key)}" for key in spec.key)


@contextmanager
def io_as_unavailable(path: Path) -> Iterator[None]:
    """I/O failures (a file locked by another process, an unwritable directory, a full disk) are an
    outage to wait out: the sync keeps its cursors and tries again later."""
    try:
        yield
    except (duckdb.IOException, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WarehouseUnavailable(f"{path}: {first}") from error
