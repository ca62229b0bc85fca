"""`triage eval --compare embedded,cascade,llm FILE`: several backends on one labelled file, side by
side: quality, the share of messages sent to the LLM, cost and CPU per 1,000 messages."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from triage.classify.base import make_classifier
from triage.classify.evaluate import EvalDataError, LabelledFile, Task, evaluate
from triage.settings import Settings

BACKENDS = ("rules", "embedded", "llm", "cascade")
LLM_BACKENDS = ("llm", "cascade")


def parse_backends(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or len(names) < 2:
        raise EvalDataError(
            f"--compare: {', '.join(map(repr, unknown)) + ' unknown; ' if unknown else ''}"
            f"name two or more of {', '.join(BACKENDS)}, e.g. embedded,cascade,llm"
        )
    return names


def compare(
    settings: Settings, backends: list[str], data: LabelledFile, task: Task, workers: int
) -> list[dict]:
    """One evaluate() report per backend, each with its `backend`."""
    reports = []
    for backend in backends:
        chosen = settings.model_copy(deep=True)
        chosen.classifier.backend = backend  # type: ignore[assignment]
        classifier = make_classifier(chosen)
        report = evaluate(classifier, data, task, workers=workers if backend in LLM_BACKENDS else 1)
        reports.append({"backend": backend, **report})
    return reports


def show(console: Console, reports: list[dict[str, Any]]) -> None:
    first = reports[0]
    table = Table(
        "",
        *(report["backend"] for report in reports),
        title=f"{first['task']} on {first['n']} messages",
    )

    def row(name: str, cell) -> None:
        table.add_row(name, *(cell(report) for report in reports))

    row("accuracy", lambda r: f"{r['accuracy']:.3f}")
    row("macro-F1", lambda r: f"{r['macro_f1']:.3f}")
    if first["task"] == "urgency":
        row("urgent recall", lambda r: f"{r['per_class'].get('urgent', {}).get('recall', 0):.3f}")
        row("urgent precision", lambda r: f"{r['per_class'].get('urgent', {}).get('precision', 0):.3f}")
    row("called high/urgent", lambda r: f"{r['flagged_share']:.1%}")
    row("sent to the LLM", lambda r: f"{r['llm_share']:.1%}")
    row("degraded", lambda r: str(r["degraded"]))
    row("cost / 1,000 messages", lambda r: f"${r['cost_usd_per_1000']:.4f}")
    row("CPU s / 1,000 messages", lambda r: f"{r['cpu_s_per_1000']:.1f}")
    row("messages/s", lambda r: str(r["messages_per_s"]))
    console.print(table)
