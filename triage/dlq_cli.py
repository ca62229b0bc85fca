"""`triage dlq list` and `triage dlq replay`: thin commands over triage/dlq.py.

Registered in cli.py with `app.add_typer(dlq_app, name="dlq")`, so this module does not import cli.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from triage import dlq
from triage.dlq import DeadLetter, DeadLetters, DLQError, Filters
from triage.kafka import BrokerUnavailable
from triage.routing.timing import parse_duration
from triage.settings import Settings, SettingsError, load_settings

dlq_app = typer.Typer(
    help="List the dead-letter topic and replay its records to the input topic after a fix.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

Since = Annotated[
    str | None, typer.Option(help="only records that failed within this window, e.g. 30m, 24h, 7d")
]
Reason = Annotated[
    list[str] | None,
    typer.Option("--reason", metavar="CODE", help="only records with this triage.error.code (repeatable)"),
]


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Known failures print `error: <what and where>` and exit 2, as in cli.py."""
    try:
        yield
    except (SettingsError, BrokerUnavailable, DLQError) as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _filters(since: str | None, reasons: list[str] | None) -> Filters:
    try:
        window = parse_duration(since) if since else None
    except ValueError as error:
        raise DLQError(f"--since: {error}") from None
    return Filters(window, frozenset(reasons or ()))


def _read(settings: Settings) -> DeadLetters:
    with err.status(f"reading {settings.kafka.dlq_topic} from {settings.kafka.bootstrap_servers}"):
        return dlq.read_dead_letters(settings.kafka)


@dlq_app.command("list")
def list_(
    since: Since = None,
    reason: Reason = None,
    limit: Annotated[int | None, typer.Option(min=1, help="show only the N most recent")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Show dead-lettered records, oldest first: where, when and why they failed, where they came from."""
    with one_line_errors():
        filters = _filters(since, reason)
        settings = load_settings()
        dead = _read(settings)
        matching, filtered_out = dead.select(filters)
    matching.sort(key=lambda letter: (letter.failed_at or datetime.min.replace(tzinfo=UTC), letter.position))
    shown = matching[-limit:] if limit else matching
    if as_json:
        for letter in shown:
            print(json.dumps(letter.describe(dead.replayed(letter)), ensure_ascii=False))
        return
    if shown:
        console.print(_table(settings.kafka.dlq_topic, shown, dead))
    replayed = sum(dead.replayed(letter) for letter in matching)
    more = f"; showing the {len(shown)} most recent" if len(shown) < len(matching) else ""
    console.print(
        f"{len(dead.letters)} records on {settings.kafka.dlq_topic}: {len(matching)} match "
        f"({replayed} replayed already), {filtered_out} filtered out{more}",
        highlight=False,
    )


@dlq_app.command("replay")
def replay_(
    since: Since = None,
    reason: Reason = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would be replayed; send nothing")
    ] = False,
) -> None:
    """Send dead-lettered records back to the input topic with their original key, value and headers.

    Each record is replayed at most once, whatever the filters (see docs/operations.md, "Dead-letter topic").
    """
    with one_line_errors():
        filters = _filters(since, reason)
        settings = load_settings()
        dead = _read(settings)
        plan = dlq.plan_replay(dead, filters)
        if dry_run:
            if plan.pending:
                console.print(_table(f"would replay to {settings.kafka.input_topic}", plan.pending, dead))
        else:
            with err.status(f"replaying {len(plan.pending)} records to {settings.kafka.input_topic}"):
                dlq.replay(settings.kafka, plan.pending)
    console.print(
        f"{'would replay' if dry_run else 'replayed'} {len(plan.pending)} records from "
        f"{settings.kafka.dlq_topic} to {settings.kafka.input_topic}; "
        f"{plan.already_replayed} skipped as already replayed; {plan.filtered_out} filtered out",
        highlight=False,
    )
    content = plan.content_failures()
    if content:
        codes = escape(", ".join(f"{code}: {count}" for code, count in sorted(content.items())))
        console.print(
            f"[yellow]note:[/] {sum(content.values())} of them failed for their content ({codes}); "
            "they will be dead-lettered again unless the data, or the setting that refused it, was fixed",
            highlight=False,
        )
    if dry_run:
        console.print("dry run: nothing was sent")


COLUMNS = ("dlq", "failed UTC", "code", "reason", "original", "key", "size", "replayed")
MIN_REASON = 30  # narrower than this beside the other columns: one block per record instead
MAX_KEY = 16  # a longer key wraps in its column
GAP = 3  # between columns: padding, rule, padding


def _table(title: str, letters: list[DeadLetter], dead: DeadLetters) -> RenderableType:
    """One row per record when the reason has room beside the other columns, else one block per record
    (a narrow terminal): nothing is left out or cut, long reasons and keys wrap (--json has them too)."""
    rows = [_cells(letter, dead) for letter in letters]
    width = {c: max([len(c)] + [len(row[c]) for row in rows]) for c in COLUMNS}
    width["key"] = min(width["key"], MAX_KEY)
    others = sum(width[c] for c in COLUMNS if c != "reason") + GAP * (len(COLUMNS) - 1)
    if console.width - others < MIN_REASON:
        return Group(Text(title, style="bold"), *(_block(row) for row in rows))
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
    for column in COLUMNS:
        wraps = column in ("reason", "key")
        table.add_column(
            column,
            min_width=None if wraps else width[column],
            max_width=width[column] if column == "key" else None,
            no_wrap=not wraps,
            overflow="fold",
            justify="right" if column == "size" else "left",
        )
    for row in rows:
        table.add_row(*(Text(row[column]) for column in COLUMNS))  # Text: content is never read as markup
    return table


def _block(row: dict[str, str]) -> RenderableType:
    """A record in a narrow terminal: its position, time, code and replay on a line, then where it came
    from and why it failed, indented and wrapped."""
    head = "  ".join(
        filter(None, (row["dlq"], row["failed UTC"], row["code"], row["replayed"] and "replayed"))
    )
    origin = ", ".join(
        filter(None, (row["original"] and f"from {row['original']}", row["key"] and f"key {row['key']}"))
    )
    details = [
        Text(f"{origin}, {row['size']} bytes" if origin else f"{row['size']} bytes"),
        Text(row["reason"]),
    ]
    return Group(Text(head), *(Padding(text, (0, 0, 0, 2)) for text in details))


def _cells(letter: DeadLetter, dead: DeadLetters) -> dict[str, str]:
    failed_at = letter.failed_at
    return {
        "dlq": letter.position,
        "failed UTC": f"{failed_at.astimezone(UTC):%m-%d %H:%M}" if failed_at else "",  # year: --json
        "code": letter.code,
        "reason": " ".join(letter.detail.split()),
        "original": letter.original,
        "key": letter.key.decode("utf-8", "replace") if letter.key is not None else "",
        "size": str(len(letter.value or b"")),
        "replayed": "yes" if dead.replayed(letter) else "",
    }
