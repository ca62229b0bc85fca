"""The reference table of every `TRIAGE_` setting, written from the settings model itself, so that the
documentation cannot drift from the code (tests/test_docs.py checks it).

    python -m triage.settings_reference            # rewrite the table in docs/configuration.md
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from triage.settings import DEFAULT_CONFIG_FILE, Settings

BEGIN, END = "<!-- settings:begin -->\n", "<!-- settings:end -->"
CONFIG_FILE_ROW = (
    "TRIAGE_CONFIG",
    f"`{DEFAULT_CONFIG_FILE}`",
    "the YAML file the other settings are also read from (an environment variable only)",
)


def rows(model: type[BaseModel] = Settings, prefix: str = "TRIAGE_") -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, sections expanded in the model's order."""
    found = []
    for name, field in model.model_fields.items():
        variable = f"{prefix}{(field.alias or name).upper()}"
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            found.extend(rows(section, f"{variable}__"))
        else:
            found.append((variable, _default(field), " ".join((field.description or "").split())))
    return found


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "(none)"
    if value == "":
        return "(empty)"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        value = {
            key: item.model_dump(mode="json") if isinstance(item, BaseModel) else item
            for key, item in value.items()
        }
        return f"`{json.dumps(value)}`"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for variable, default, meaning in [*rows(), CONFIG_FILE_ROW]:
        escaped = meaning.replace("|", r"\|")  # a pipe would end the cell
        lines.append(f"| `{variable}` | {default} | {escaped} |")
    return "\n".join(lines) + "\n"


def rewrite(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    before, found, rest = text.partition(BEGIN)
    if not found or END not in rest:
        raise SystemExit(f"{page}: no {BEGIN.strip()} ... {END} markers")
    page.write_text(before + BEGIN + settings_table() + END + rest.split(END, 1)[1], encoding="utf-8")


if __name__ == "__main__":
    rewrite(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/configuration.md"))
