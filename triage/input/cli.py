"""`triage input test FILE` and `triage schema results`: try an input mapping, print the results schema.

Registered in cli.py with `app.add_typer(...)`, so this module does not import cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from triage.input.decoder import Decoder
from triage.input.mapping import Mapping, MappingError
from triage.input.presets import Skipped
from triage.message import InvalidMessage
from triage.receivers.results_format import SCHEMAS
from triage.settings import SettingsError, load_settings

input_app = typer.Typer(help="Try the input mapping and presets on sample records.", no_args_is_help=True)
schema_app = typer.Typer(help="Print the schemas of what triage writes.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@input_app.command("test")
def test(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="JSON Lines: one incoming value per line")],
    mapping: Annotated[
        Path | None, typer.Option(metavar="FILE", help="the mapping file (default TRIAGE_INPUT__MAPPING)")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="debezium or cloudevents (default TRIAGE_INPUT__PRESET)"),
    ] = None,
) -> None:
    """Show what each record of FILE maps to, or why it would be skipped or dead-lettered.

    Exit 0 when every record maps to a message (or is skipped), 1 when one would be dead-lettered.
    """
    try:
        settings = load_settings()
        if preset is not None:
            if preset not in ("debezium", "cloudevents"):
                raise SettingsError(f"--preset: {preset!r} is not debezium or cloudevents")
            settings.input.preset = preset  # type: ignore[assignment]
        chosen = mapping or settings.input.mapping
        decoder = Decoder(settings, Mapping.load(chosen) if chosen else None)
        lines = file.read_text(encoding="utf-8").splitlines()
    except (SettingsError, MappingError) as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
    except OSError as error:
        err.print(f"[bold red]error:[/] {file}: {error.strerror}", highlight=False)
        raise typer.Exit(2) from None
    failed = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            outcome = decoder.decode(line.encode("utf-8"))
        except InvalidMessage as error:
            failed += 1
            shown = f"{where}: [red]dead letter[/] {error.code}: {escape(error.detail)}"
            console.print(shown, highlight=False)
            continue
        if isinstance(outcome, Skipped):
            console.print(f"{where}: [yellow]skipped[/] ({outcome.reason})", highlight=False)
            continue
        shown = outcome.message.model_dump(mode="json", exclude_defaults=True)
        console.print(f"{where}: {escape(json.dumps(shown, ensure_ascii=False))}", highlight=False)
    raise typer.Exit(1 if failed else 0)


@schema_app.command("results")
def results(
    format_: Annotated[
        Literal["avro", "json-schema", "protobuf"],
        typer.Option("--format", help="avro, json-schema or protobuf"),
    ] = "avro",
) -> None:
    """Print the schema of the results topic's records (registered under <topic>-value for avro/protobuf)."""
    print(SCHEMAS[format_]())
