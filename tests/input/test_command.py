"""`triage input test FILE`: what each record maps to, is skipped as, or is dead-lettered for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "triage", "input", "test", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "250", "PATH": "", **(env or {})},
    )


def test_each_line_shows_its_message_or_its_fate(tmp_path: Path):
    mapping = tmp_path / "input.yaml"
    mapping.write_text("id: to_string(ticket_id)\nbody: message_text\n")
    records = tmp_path / "changes.jsonl"
    change = {"op": "c", "before": None, "after": {"ticket_id": 9, "message_text": "Card declined"}}
    delete = {"op": "d", "before": {"ticket_id": 9}, "after": None}
    no_body = {"op": "u", "before": None, "after": {"ticket_id": 10}}
    records.write_text("\n".join(json.dumps(r) for r in (change, delete, no_body)) + "\n")

    done = run(str(records), "--mapping", str(mapping), "--preset", "debezium")

    assert done.returncode == 1, done.stderr  # one record would be dead-lettered
    lines = done.stdout.splitlines()
    assert lines[0] == f'{records}:1: {{"id": "9", "body": "Card declined"}}'
    assert lines[1] == f"{records}:2: skipped (deleted)"
    assert lines[2].startswith(f"{records}:3: dead letter unmappable: body: `message_text`")


def test_a_bad_mapping_file_is_one_line_and_exit_2(tmp_path: Path):
    mapping = tmp_path / "input.yaml"
    mapping.write_text("id: a.b\nbody: a.[\n")
    records = tmp_path / "r.jsonl"
    records.write_text("{}\n")
    done = run(str(records), env={"TRIAGE_INPUT__MAPPING": str(mapping)})
    assert done.returncode == 2 and done.stderr.strip().startswith(f"error: {mapping}:2: body: bad JMESPath")
