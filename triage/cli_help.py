"""`--help` that reads like git's or kubectl's: the commands in the order of a first hour, flags without a
value placeholder, and one usage notation: `TEXT` for a required argument, `[CSV]` for an optional one.

`app = typer.Typer(cls=Group)` at the root is enough: the group adopts every command and sub-group
under it, including those registered later with `app.command()` or `app.add_typer()`.
"""

from __future__ import annotations

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# the order a new user meets them; commands not named here follow, in the order they were added
FIRST_HOUR = (
    *("demo", "broker", "run", "produce", "classify", "routes", "report", "eval", "train", "dlq"),
    *("silence", "ingest", "input", "schema"),  # beyond the first hour: the on-call, helpdesks, topics
    "forget",  # the right to erasure
    "warehouse",  # the data warehouse
)


def _tidy(params: list) -> list:
    """A flag takes no value, so it shows none (`--json`, not `--json <bool>`); an argument is named in
    capitals, as in the usage line."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.metavar is None:
            param.metavar = param.name.upper()
    return params


def _usage(command: TyperCommand | TyperGroup, ctx: typer.Context) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            name = param.metavar + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required else f"[{name}]")
    return pieces


class Command(TyperCommand):
    def get_params(self, ctx: typer.Context) -> list:
        return _tidy(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        return _usage(self, ctx)


class Group(TyperGroup):
    def __init__(self, **attrs: object) -> None:
        super().__init__(**attrs)
        for command in self.commands.values():
            _adopt(command)

    def add_command(self, cmd: typer.core._click.Command, name: str | None = None) -> None:
        super().add_command(_adopt(cmd), name)

    def get_params(self, ctx: typer.Context) -> list:
        return _tidy(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        return [*_usage(self, ctx), self.subcommand_metavar]

    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(
            names, key=lambda name: FIRST_HOUR.index(name) if name in FIRST_HOUR else len(FIRST_HOUR)
        )


def _adopt(command: typer.core._click.Command) -> typer.core._click.Command:
    """Typer builds plain TyperCommands and TyperGroups; these classes add behaviour only, no state."""
    if type(command) is TyperCommand:
        command.__class__ = Command
    elif type(command) is TyperGroup:
        command.__class__ = Group
        for sub in command.commands.values():
            _adopt(sub)
    return command
