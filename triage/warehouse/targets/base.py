"""What every warehouse target does: create and widen tables, and write rows idempotently by key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from triage.warehouse.schema import TableSpec

Row = dict[str, Any]  # column name -> str | int | float | bool | datetime (UTC) | dict | list | None


class WarehouseUnavailable(Exception):
    """The warehouse did not answer or refused for a reason that may pass (network, 5xx, throttling):
    the sync stops, keeps its cursors, and tries again later. Anything else (bad credentials, a missing
    dataset) is a plain exception with a message naming the problem."""


class Target(Protocol):
    def ensure_table(self, spec: TableSpec) -> None:
        """Create `<prefix><spec.name>` if missing (partitioned or clustered by day on spec.day_column
        where the warehouse supports it); add the spec's columns that the table lacks. Never drops or
        rebuilds a table."""

    def upsert(self, spec: TableSpec, rows: Sequence[Row]) -> None:
        """Write `rows` so that each key of spec.key is in the table once, with these values: a row whose
        key is already there is replaced. Running the same call twice (a re-run after a crash) leaves the
        table as once. One batch is one load job / one transaction where the warehouse allows it."""

    def close(self) -> None: ...
