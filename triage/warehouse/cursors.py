"""Where the sync has got to, per table and warehouse, kept in the store (table `warehouse_cursors`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from triage.store import Store
from triage.store.tables import WarehouseCursorRow


@dataclass(frozen=True)
class Position:
    """The (time, key) of the last row sent; rows are read in this order. The key is kept as text."""

    at: datetime
    key: str


def identity(url: str) -> str:
    """The warehouse a cursor belongs to: its URL without a password (none should be in it anyway)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}@{host}"
    return f"{scheme}{sep}{rest}"


def read(store: Store, table: str, warehouse: str) -> Position | None:
    with store.session(read_only=True) as session:
        row = session.get(WarehouseCursorRow, (table, warehouse))
        return Position(_utc(row.position_at), row.position_key) if row else None


def read_all(store: Store, warehouse: str) -> dict[str, Position]:
    with store.session(read_only=True) as session:
        rows = session.scalars(select(WarehouseCursorRow).where(WarehouseCursorRow.warehouse == warehouse))
        return {row.table_name: Position(_utc(row.position_at), row.position_key) for row in rows}


def write(store: Store, table: str, warehouse: str, position: Position) -> None:
    """One short transaction of its own, after the batch is in the warehouse."""
    with store.session() as session:
        module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        values = {
            "table_name": table,
            "warehouse": warehouse,
            "position_at": position.at,
            "position_key": position.key,
            "updated_at": datetime.now(UTC),
        }
        statement = module.insert(WarehouseCursorRow).values(**values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["table_name", "warehouse"],
                set_={name: values[name] for name in ("position_at", "position_key", "updated_at")},
            )
        )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
