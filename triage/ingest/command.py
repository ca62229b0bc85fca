"""`triage ingest`: registered in cli.py with one line, so this module does not import cli.py."""

from __future__ import annotations

import signal
import threading

import typer
from rich.console import Console

from triage.ingest.service import IngestConfigError, IngestService
from triage.kafka import BrokerUnavailable
from triage.ops.http import OpsPortError
from triage.ops.logging import setup_logging, stop_logging
from triage.settings import SettingsError, load_settings
from triage.store import StoreUnavailable

KNOWN_FAILURES = (SettingsError, BrokerUnavailable, StoreUnavailable, OpsPortError, IngestConfigError)
err = Console(stderr=True)


def ingest() -> None:
    """Take helpdesk webhooks on POST /messages (port TRIAGE_INGEST__PORT) into the input topic, until
    SIGTERM or Ctrl-C. See docs/ingest.md for each helpdesk's webhook."""
    stop = threading.Event()
    try:
        settings = load_settings()
        setup_logging(settings.log.level, settings.log.format == "json")
        service = IngestService.from_settings(settings).start()
    except KNOWN_FAILURES as error:
        stop_logging()
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    stop.wait()
    service.stop()
