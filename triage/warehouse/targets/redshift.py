"""Redshift target (`redshift://USER@HOST:PORT/DB`) through redshift_connector.

A batch is one transaction: a temporary staging table like the target, multi-row INSERTs into it,
`DELETE ... USING` the staged keys from the table, `INSERT ... SELECT` from the stage. Redshift has no
ON CONFLICT and no MERGE on every cluster version; delete-and-insert by key is its documented upsert,
and a batch written again after a crash replaces the same keys. Only SQL that Redshift accepts is sent.

Types: VARCHAR(65535), BIGINT, DOUBLE PRECISION, BOOLEAN, TIMESTAMP (UTC) and SUPER for JSON, with
DISTKEY on the key and SORTKEY on the day column. The server is asked once what it is (`SELECT
version()`); on a plain PostgreSQL server (the tests, or a PostgreSQL-wire warehouse) SUPER becomes
VARCHAR(65535) holding the JSON text and DISTKEY/SORTKEY are left out. A new column is `ALTER TABLE ...
ADD COLUMN`; nothing is ever rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import redshift_connector

from triage.warehouse.schema import Column, TableSpec
from triage.warehouse.targets.base import Row, WarehouseUnavailable

if TYPE_CHECKING:
    from triage.settings import WarehouseSettings

TYPES = {
    "STRING": "VARCHAR(65535)",
    "INTEGER": "BIGINT",
    "FLOAT": "DOUBLE PRECISION",
    "BOOLEAN": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMP",
    "JSON": "SUPER",
}
MAX_VARCHAR_BYTES = 65535  # Redshift counts VARCHAR length in bytes
MAX_PARAMETERS = 32767  # the wire protocol's parameter count is 16 bits
MAX_STATEMENT_BYTES = 8 * 1024 * 1024  # Redshift refuses statements over 16 MB; stay well under
TRANSIENT_STATES = ("08", "40001", "40P01", "53", "55P03", "57P01", "57P02", "57P03", "XX000")
DEFAULT_PORT = 5439


def open(url: str, settings: WarehouseSettings) -> RedshiftTarget:
    parts = urlsplit(url)
    database = parts.path.strip("/")
    if not parts.username or not parts.hostname or not database:
        raise ValueError(f"warehouse URL {url!r}: expected redshift://USER@HOST:PORT/DB")
    if parts.password:
        raise ValueError(
            f"warehouse URL for {parts.hostname}: no password in the URL; set "
            "TRIAGE_WAREHOUSE__REDSHIFT_PASSWORD (or TRIAGE_WAREHOUSE__REDSHIFT_IAM=true)"
        )
    options: dict[str, Any] = {
        "host": parts.hostname,
        "port": parts.port or DEFAULT_PORT,
        "database": database,
        "ssl": settings.redshift_ssl,
        "timeout": int(max(1, settings.timeout_s)),
    }
    user = unquote(parts.username)
    if settings.redshift_iam:
        options |= {"iam": True, "db_user": user}
        options |= {
            name: value
            for name, value in (
                ("cluster_identifier", settings.redshift_cluster_identifier),
                ("region", settings.redshift_region),
                ("profile", settings.redshift_profile),
            )
            if value
        }
    else:
        options |= {"user": user, "password": settings.redshift_password}
    return RedshiftTarget(options, settings.redshift_schema, settings.table_prefix)


class RedshiftTarget:
    def __init__(self, options: dict[str, Any], schema: str, prefix: str) -> None:
        self.options = options
        self.schema = schema.lower()
        self.prefix = prefix
        self.where = f"Redshift {options['host']}:{options['port']}/{options['database']}"
        self.redshift: bool | None = None  # None until the server has said what it is
        self._connection: redshift_connector.Connection | None = None
        self._connect()

    def table(self, name: str) -> str:
        """Unquoted, lower case: Redshift folds identifiers, so this is how its catalogue names it."""
        return f"{self.prefix}{name}".lower()

    def ensure_table(self, spec: TableSpec) -> None:
        table = self.table(spec.name)
        with self._errors(f"creating {self.schema}.{table}") as connection:
            cursor = connection.cursor()
            cursor.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (self.schema, table),
            )
            have = {name for (name,) in cursor.fetchall()}
            connection.commit()
            if not have:
                self._ddl(connection, create_sql(spec, self._qualified(table), redshift=bool(self.redshift)))
                return
            for column in spec.columns:
                if column.name not in have:
                    self._add_column(connection, table, column)

    def upsert(self, spec: TableSpec, rows: Sequence[Row]) -> None:
        if not rows:
            return
        latest = {tuple(row[name] for name in spec.key): row for row in rows}  # one row per key
        table = self._qualified(self.table(spec.name))
        stage = f"triage_stage_{uuid.uuid4().hex[:12]}"
        names = [column.name for column in spec.columns]
        columns = ", ".join(_quote(name) for name in names)
        placeholder = "(" + ", ".join(self._placeholder(column) for column in spec.columns) + ")"
        with self._errors(f"writing {table}") as connection:
            cursor = connection.cursor()
            try:
                cursor.execute(f"CREATE TEMP TABLE {_quote(stage)} (LIKE {table})")
                for chunk in _chunks([_values(spec.columns, row) for row in latest.values()], len(names)):
                    cursor.execute(
                        f"INSERT INTO {_quote(stage)} ({columns}) VALUES "
                        + ", ".join([placeholder] * len(chunk)),
                        [value for values in chunk for value in values],
                    )
                matches = " AND ".join(f"{table}.{_quote(k)} = {_quote(stage)}.{_quote(k)}" for k in spec.key)
                cursor.execute(f"DELETE FROM {table} USING {_quote(stage)} WHERE {matches}")
                cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_quote(stage)}")
                cursor.execute(f"DROP TABLE {_quote(stage)}")
                connection.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    connection.rollback()
                raise

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    # -- the connection ----------------------------------------------------------------------------

    def _connect(self) -> redshift_connector.Connection:
        if self._connection is None:
            with self._mapped("connecting"):
                connection = redshift_connector.connect(**self.options)
                try:
                    cursor = connection.cursor()
                    cursor.execute("SELECT version()")
                    (version,) = cursor.fetchone()
                    connection.commit()
                    self._schema_exists(connection)
                except BaseException:
                    with contextlib.suppress(Exception):
                        connection.close()
                    raise
            if self.redshift is None:
                self.redshift = "redshift" in str(version).lower()
            self._connection = connection
        return self._connection

    def _schema_exists(self, connection: redshift_connector.Connection) -> None:
        cursor = connection.cursor()
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (self.schema,))
        found = cursor.fetchone()
        connection.commit()
        if not found:
            raise RuntimeError(
                f"{self.where}: schema {self.schema!r} not found (CREATE SCHEMA {self.schema}, or set "
                "TRIAGE_WAREHOUSE__REDSHIFT_SCHEMA)"
            )

    def _qualified(self, table: str) -> str:
        return f"{_quote(self.schema)}.{_quote(table)}"

    def _placeholder(self, column: Column) -> str:
        return "JSON_PARSE(%s)" if column.type == "JSON" and self.redshift else "%s"

    def _ddl(self, connection: redshift_connector.Connection, statement: str) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute(statement)
            connection.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                connection.rollback()
            raise

    def _add_column(self, connection: redshift_connector.Connection, table: str, column: Column) -> None:
        """One column per ALTER, as Redshift wants; a column another worker just added is fine."""
        sql_type = _sql_type(column, redshift=bool(self.redshift))
        statement = f"ALTER TABLE {self._qualified(table)} ADD COLUMN {_quote(column.name)} {sql_type}"
        try:
            self._ddl(connection, statement)
        except redshift_connector.ProgrammingError as error:
            if _state(error) != "42701":  # duplicate_column
                raise

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[redshift_connector.Connection]:
        connection = self._connect()
        with self._mapped(doing):
            yield connection

    @contextlib.contextmanager
    def _mapped(self, doing: str) -> Iterator[None]:
        """Passing trouble (network, serialization conflicts, a server restarting) is
        WarehouseUnavailable and the connection is dropped to be made again; the rest is one line."""
        try:
            yield
        except (redshift_connector.InterfaceError, OSError) as error:
            self._drop()
            raise WarehouseUnavailable(f"{self.where}: {doing}: no answer ({_message(error)})") from error
        except redshift_connector.Error as error:
            state = _state(error)
            if state.startswith(TRANSIENT_STATES):
                self._drop()
                raise WarehouseUnavailable(f"{self.where}: {doing}: {_message(error)}") from error
            raise RuntimeError(f"{self.where}: {doing}: {_message(error)}{_hint(state)}") from error

    def _drop(self) -> None:
        self.close()


def create_sql(spec: TableSpec, table: str, redshift: bool) -> str:
    columns = [f"{_quote(c.name)} {_sql_type(c, redshift)}" for c in spec.columns]
    columns.append(f"PRIMARY KEY ({', '.join(_quote(k) for k in spec.key)})")  # informational on Redshift
    statement = f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})"
    if redshift:
        statement += f" DISTKEY({_quote(spec.key[0])}) SORTKEY({_quote(spec.day_column)})"
    return statement


def _sql_type(column: Column, redshift: bool) -> str:
    if column.type == "JSON" and not redshift:
        return TYPES["STRING"]  # PostgreSQL has no SUPER: the JSON text
    return TYPES[column.type]


def _values(columns: Sequence[Column], row: Row) -> list[Any]:
    return [_value(column, row.get(column.name)) for column in columns]


def _value(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.type == "JSON":
        return json.dumps(value, ensure_ascii=False)
    if column.type == "TIMESTAMP" and isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if column.type == "STRING" and isinstance(value, str) and len(value) * 4 > MAX_VARCHAR_BYTES:
        encoded = value.encode()
        if len(encoded) > MAX_VARCHAR_BYTES:  # cut at a character boundary, as VARCHAR(65535) holds
            return encoded[:MAX_VARCHAR_BYTES].decode(errors="ignore")
    return value


def _chunks(rows: list[list[Any]], width: int) -> Iterator[list[list[Any]]]:
    """Rows for one INSERT each: within the wire's parameter count and well under 16 MB."""
    chunk: list[list[Any]] = []
    size = 0
    for values in rows:
        row_size = sum(len(v) if isinstance(v, str) else 8 for v in values)
        if chunk and ((len(chunk) + 1) * width > MAX_PARAMETERS or size + row_size > MAX_STATEMENT_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(values)
        size += row_size
    if chunk:
        yield chunk


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _state(error: Exception) -> str:
    detail = error.args[0] if error.args else None
    return str(detail.get("C", "")) if isinstance(detail, dict) else ""


def _message(error: Exception) -> str:
    detail = error.args[0] if error.args else None
    if isinstance(detail, dict):
        return str(detail.get("M", detail))
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _hint(state: str) -> str:
    if state.startswith("28"):
        return " (the password or IAM credentials were refused: TRIAGE_WAREHOUSE__REDSHIFT_PASSWORD)"
    if state == "3D000":
        return " (create the database first)"
    if state == "42501":
        return " (grant the user CREATE and USAGE on the schema, and CREATE TEMP on the database)"
    return ""
