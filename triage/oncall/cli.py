"""`triage silence add|list|expire`: silences kept in the store, applied by every worker.

Registered in cli.py with `app.add_typer(silence_app, name="silence")`, so this module does not import
cli.py.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from triage.oncall import silences
from triage.oncall.silences import SilenceError
from triage.routing import Vocabulary
from triage.routing.timing import parse_duration
from triage.settings import SettingsError, load_settings
from triage.store import Store, StoreUnavailable

silence_app = typer.Typer(
    help="Mute the alerts of a known problem for a while (nothing is sent, nothing is lost).",
    no_args_is_help=True,
)
console = Console(width=160)
err = Console(stderr=True)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Known failures print `error: <what and where>` and exit 2, as in cli.py."""
    try:
        yield
    except (SettingsError, StoreUnavailable, SilenceError) as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _store() -> Store:
    store = Store(load_settings().database_url)
    store.upgrade()
    return store


@silence_app.command("add")
def add(
    matchers: Annotated[
        list[str],
        typer.Argument(metavar="MATCHER...", help="as in the routing file, e.g. 'category = outage'"),
    ],
    for_: Annotated[str, typer.Option("--for", help="how long, e.g. 30m, 2h, 1d")] = "2h",
    comment: Annotated[str, typer.Option(help="why (shown by `silence list`)")] = "",
    by: Annotated[str | None, typer.Option(help="who silences (default: the login name)")] = None,
) -> None:
    """Silence the deliveries whose case matches every MATCHER; prints the silence's id."""
    with one_line_errors():
        settings = load_settings()
        try:
            duration = parse_duration(for_)
        except ValueError as error:
            raise SilenceError(f"--for: {error}") from None
        checked = silences.check_matchers(matchers, Vocabulary.from_settings(settings))
        store = _store()
        silence_id = silences.add(store, [str(m) for m in checked], duration, comment, by or _login())
    print(silence_id)


@silence_app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="ended silences too")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """The active silences (with --all, the ended ones too), ending soonest first."""
    with one_line_errors():
        rows = silences.listed(_store(), include_ended=all_)
    now = datetime.now(UTC)
    if as_json:
        for row in rows:
            print(json.dumps(_describe(row, now), ensure_ascii=False))
        return
    table = Table("id", "matchers", "ends", "by", "comment")
    for row in rows:
        said = _describe(row, now)
        table.add_row(
            row.id,
            escape(" and ".join(row.matchers)),
            said["ends"],
            escape(row.created_by),
            escape(row.comment),
        )
    if rows:
        console.print(table)
    console.print(f"{len(rows)} {'silences' if all_ else 'active silences'}", highlight=False)


@silence_app.command("expire")
def expire(silence_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """End a silence now: deliveries claimed from now on are sent again (what it held stays held)."""
    with one_line_errors():
        if not silences.expire(_store(), silence_id):
            raise SilenceError(f"no active silence with id {silence_id!r} (see `triage silence list`)")
    print(f"expired {silence_id}")


def _describe(row, now: datetime) -> dict:
    ends = row.ends_at if row.ends_at.tzinfo else row.ends_at.replace(tzinfo=UTC)
    left = (ends - now).total_seconds()
    when = f"{ends:%Y-%m-%d %H:%M} UTC"
    return {
        "id": row.id,
        "matchers": row.matchers,
        "ends_at": ends.isoformat(),
        "ends": f"{when} (in {_span(left)})" if left > 0 else f"{when} (ended)",
        "created_by": row.created_by,
        "comment": row.comment,
        "active": left > 0,
    }


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    return (
        f"{minutes // 60}h{minutes % 60:02d}m"
        if minutes >= 60
        else f"{minutes}m"
        if minutes
        else f"{int(seconds)}s"
    )


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
