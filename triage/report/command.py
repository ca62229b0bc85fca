"""`triage report`: build the CX health report from the store and write it as HTML or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer

from triage.report.html import render_html
from triage.report.model import Report, as_json
from triage.report.queries import build_report
from triage.report.timeline import UnknownCustomer, timeline
from triage.report.window import Window
from triage.settings import SettingsError, load_settings
from triage.store import Store, StoreUnavailable
from triage.warehouse.report_command import WarehouseError, from_warehouse_report

ReportFormat = Literal["html", "json"]
DEFAULT_HTML = Path("report.html")


def report(
    since: Annotated[str, typer.Option(help="how far back: 30m, 12h, 7d, 2w")] = "7d",
    out: Annotated[
        Path | None, typer.Option(help="default: report.html for html, standard output for json")
    ] = None,
    format_: Annotated[ReportFormat, typer.Option("--format", help="a page, or one JSON object")] = "html",
    customer: Annotated[
        str | None, typer.Option(help="one customer's timeline instead (an id, e-mail address or phone)")
    ] = None,
    from_warehouse: Annotated[
        str | None,
        typer.Option("--from-warehouse", metavar="URL", help="draw it from duckdb:///FILE or parquet:///DIR"),
    ] = None,
) -> None:
    """Write the CX health report: sentiment, CX scores, urgency, categories, churn risk, alerts, LLM cost."""
    if customer is not None:
        _timeline(customer, format_, out)
        return
    try:
        window = Window.last(since)
    except ValueError as error:
        _fail(f"--since: {error}")
    try:
        built = from_warehouse_report(from_warehouse, window) if from_warehouse else _build(window)
    except (SettingsError, StoreUnavailable, WarehouseError) as error:
        _fail(str(error))
    if format_ == "json":
        document = json.dumps(as_json(built)) + "\n"
        if out is None:
            typer.echo(document, nl=False)
            return
        _write(out, document)
    else:
        out = out or DEFAULT_HTML
        _write(out, render_html(built))
    messages = built.activity.total
    typer.echo(
        f"wrote {out}: {messages:,} message{'' if messages == 1 else 's'} in the last {window.describe()}"
    )


def _build(window: Window) -> Report:
    settings = load_settings()
    store = Store.existing(settings.database_url)
    try:
        store.upgrade()
        with store.session() as session:
            return build_report(session, window, settings.llm.daily_budget_usd)
    finally:
        store.close()


def _timeline(customer: str, format_: ReportFormat, out: Path | None) -> None:
    """The customer's timeline as text (or one JSON object with --format json) on standard output or
    in `out`."""
    try:
        settings = load_settings()
        store = Store.existing(settings.database_url)
        try:
            store.upgrade()
            with store.session() as session:
                found = timeline(session, customer, settings.store_original_text)
        finally:
            store.close()
    except (SettingsError, StoreUnavailable, UnknownCustomer) as error:
        _fail(str(error))
    document = json.dumps(found.as_json()) + "\n" if format_ == "json" else found.text()
    if out is None:
        typer.echo(document, nl=False)
    else:
        _write(out, document)


def _write(path: Path, content: str) -> None:
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as error:
        _fail(f"cannot write {path}: {error.strerror}")


def _fail(message: str) -> NoReturn:
    """One line on standard error and exit status 2, like the other `triage` commands."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
