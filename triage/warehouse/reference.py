"""The tables and columns of docs/warehouse.md, written from triage/warehouse/schema.py, so that the page
cannot drift from what the sync creates (tests/warehouse/test_docs.py checks it).

    python -m triage.warehouse.reference           # rewrite the tables in docs/warehouse.md
"""

from __future__ import annotations

from pathlib import Path

from triage.warehouse.schema import TABLES
from triage.warehouse.targets.local import DUCKDB_TYPES

BEGIN, END = "<!-- warehouse-tables:begin -->\n", "<!-- warehouse-tables:end -->"
PAGE = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"


def tables_markdown(prefix: str = "triage_") -> str:
    parts = []
    for spec in TABLES:
        parts.append(
            f"#### `{prefix}{spec.name}`\n\n"
            f"Key: {', '.join(f'`{key}`' for key in spec.key)}; day column: `{spec.day_column}`.\n\n"
            "| column | type | DuckDB | meaning |\n| --- | --- | --- | --- |\n"
        )
        parts.extend(
            f"| `{column.name}` | {column.type} | {DUCKDB_TYPES[column.type]} | {column.description} |\n"
            for column in spec.columns
        )
        parts.append("\n")
    return "".join(parts)


def rewrite(page: Path = PAGE) -> bool:
    """Put the current tables between the markers; True when the page changed."""
    text = page.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    updated = f"{head}{BEGIN}{tables_markdown()}{END}{tail}"
    if updated != text:
        page.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":
    print("docs/warehouse.md: " + ("updated" if rewrite() else "up to date"))
