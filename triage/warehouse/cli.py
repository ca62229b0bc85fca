"""`triage warehouse sync`: copy the store to TRIAGE_WAREHOUSE__URL once and print what was sent.

Registered in cli.py with `app.add_typer(warehouse_app, name="warehouse")`."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from triage.settings import SettingsError, load_settings
from triage.store import Store, StoreUnavailable
from triage.warehouse.lane import run_once
from triage.warehouse.schema import TABLES
from triage.warehouse.targets import WarehouseUnavailable

warehouse_app = typer.Typer(
    help="Copy the store to the data warehouse (BigQuery, Redshift, DuckDB).", no_args_is_help=True
)


@warehouse_app.command("sync")
def sync_command(
    url: Annotated[
        str | None,
        typer.Option(help="the warehouse (default: TRIAGE_WAREHOUSE__URL), e.g. duckdb:///cx.duckdb"),
    ] = None,
) -> None:
    """Send the rows the warehouse lacks (new or changed since the last sync), then apply the retention."""
    try:
        settings = load_settings()
    except SettingsError as error:
        _fail(str(error))
    if url:
        settings = settings.model_copy(
            update={"warehouse": settings.warehouse.model_copy(update={"url": url})}
        )
    if not settings.warehouse.url:
        _fail("no warehouse: set TRIAGE_WAREHOUSE__URL (or --url), e.g. duckdb:///cx.duckdb")
    try:
        store = Store.existing(settings.database_url)
    except (ValueError, StoreUnavailable) as error:
        _fail(str(error))
    try:
        store.upgrade()
        result = run_once(store, settings)
    except WarehouseUnavailable as error:
        _fail(
            f"warehouse {settings.warehouse.url} is unavailable: {error}; nothing was lost, run again later"
        )
    except (ValueError, RuntimeError, StoreUnavailable) as error:
        _fail(str(error))
    finally:
        store.close()
    prefix = settings.warehouse.table_prefix
    for spec in TABLES:
        count = result.synced.get(spec.name, 0)
        typer.echo(f"{prefix}{spec.name}: {count:,} row{'' if count == 1 else 's'}")
    for table, count in sorted(result.retired.items()):
        typer.echo(f"retention: {count:,} {table} row{'' if count == 1 else 's'} left the store")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
