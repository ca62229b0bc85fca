"""`triage forget --customer ID | --email ADDRESS | --phone NUMBER`: the right to erasure.

Registered in cli.py with `app.command(name="forget")(forget)`, so this module does not import cli.py.
"""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from triage.settings import SettingsError, load_settings
from triage.store import Store, StoreUnavailable
from triage.store.forget import forget_customer


def forget(
    customer: Annotated[
        str | None, typer.Option("--customer", metavar="ID", help="the customer's id")
    ] = None,
    email: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="an e-mail address they wrote from")
    ] = None,
    phone: Annotated[
        str | None, typer.Option(metavar="NUMBER", help="a phone number they wrote from")
    ] = None,
) -> None:
    """Erase a customer: their messages, results, alerts, labels, identities and history."""
    if not any(value and value.strip() for value in (customer, email, phone)):
        _fail("name the customer: --customer ID, --email ADDRESS or --phone NUMBER")
    try:
        settings = load_settings()
        store = Store.existing(settings.database_url)
    except (SettingsError, StoreUnavailable) as error:
        _fail(str(error))
    try:
        store.upgrade()
        removed = forget_customer(store, customer, email, phone)
    except (StoreUnavailable, ValueError) as error:
        _fail(str(error))
    finally:
        store.close()
    if not removed:
        typer.echo("nothing stored about this customer: nothing removed")
        return
    typer.echo(f"removed {sum(removed.values()):,} rows:")
    width = max(len(table) for table in removed)
    for table, count in removed.items():
        typer.echo(f"  {table:<{width}}  {count:>7,}")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
