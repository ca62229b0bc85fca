"""`triage train --from-store` and `triage eval --from-store`: the commands' work and what they print."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from triage.classify.embedded import EmbeddedClassifier, Encoder
from triage.classify.evaluate import EvalDataError, Example, Task, read_examples
from triage.feedback.learn import (
    TASKS,
    NotEnoughLabels,
    agreement,
    fit,
    headline,
    held_out,
    labelled,
    trainable,
)
from triage.routing.timing import parse_duration
from triage.settings import load_settings
from triage.store import Store

console = Console(width=None if sys.stdout.isatty() else 160)  # as the other commands: piped, no wrap


def since_when(since: str) -> datetime:
    try:
        return datetime.now(UTC) - parse_duration(since)
    except ValueError as error:
        raise EvalDataError(f"--since: {error}") from None


def _store() -> Store:
    store = Store.existing(load_settings().database_url)
    store.upgrade()
    return store


def train_from_store(task: Task, out: Path, since: str, extra: Path | None, extra_weight: float) -> None:
    """Fit TASK's head on the team's latest label of each message labelled since `since`."""
    start = since_when(since)
    store = _store()
    try:
        examples = labelled(store, task, start)
    finally:
        store.close()
    more: list[Example] = read_examples(extra, task).examples if extra is not None else []
    with console.status(f"embedding {len(examples) + len(more)} messages and fitting the {task} head"):
        try:
            trained = fit(Encoder(), examples, task, more, extra_weight)
        except NotEnoughLabels as error:
            raise EvalDataError(f"not enough labels in the store since {start:%Y-%m-%d}: {error}") from None
    path = out / f"{task}.npz"
    trained.head.save(
        path, note=f"trained by `triage train --from-store` on {len(examples)} labelled messages"
    )
    classes = ", ".join(f"{n} {label}" for label, n in sorted(Counter(e.label for e in examples).items()))
    metric = {"urgency": "urgent F1", "category": "accuracy"}.get(task, "macro-F1")
    console.print(
        f"saved {path}: {len(examples)} messages labelled since {start:%Y-%m-%d} ({classes})"
        + (f" and {len(more)} rows of {extra}" if more else "")
        + f"; {trained.validation} {metric} {trained.cv_score:.3f}",
        soft_wrap=True,
    )
    if rare := trainable(examples)[1]:
        console.print(f"left out (fewer than 5 labels): {', '.join(f'{k} ({n})' for k, n in rare.items())}")
    console.print(f"serve it: TRIAGE_CLASSIFIER__MODEL_DIR={out} (heads missing there come from the package)")


def eval_from_store(task: Task | None, since: str, as_json: bool) -> None:
    """Model-vs-team agreement per field, and held-out scores of a head trained on earlier labels."""
    start = since_when(since)
    settings = load_settings()
    store = _store()
    try:
        agreed = agreement(store, start)
        examples = {name: labelled(store, name, start) for name in ([task] if task else TASKS)}
    finally:
        store.close()
    report: dict[str, Any] = {
        "since": start.isoformat(timespec="seconds"),
        "agreement": agreed,
        "held_out": {},
    }
    encoder = Encoder()
    current = EmbeddedClassifier.load(settings.classifier)  # the heads served now (packaged or MODEL_DIR)
    for name, found in examples.items():
        with console.status(f"{name}: training on the earlier labels, scoring on the latest"):
            try:
                report["held_out"][name] = held_out(encoder, current, found, name)
            except NotEnoughLabels as error:
                if task:
                    raise EvalDataError(
                        f"not enough labels in the store since {start:%Y-%m-%d}: {error}"
                    ) from None
                report["held_out"][name] = {"skipped": str(error)}
    if as_json:
        print(json.dumps(report))
        return
    _show(report)


def _show(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]Model vs team[/], labels given since {report['since'][:10]} (the latest per message):"
    )
    table = Table("field", "labels", "the model agreed", "agreement")
    for field, found in report["agreement"].items():
        share = f"{found['agreement']:.0%}" if found["agreement"] is not None else "–"
        table.add_row(field, str(found["labels"]), str(found["agreed"]), share)
    console.print(table)
    console.print(
        "[bold]Held out[/] (a time split: trained on the earlier labels, scored on the latest fifth):"
    )
    scored = Table("task", "trained on", "held out", "metric", "the embedded model now", "trained head")
    for task, found in report["held_out"].items():
        if "skipped" in found:
            scored.add_row(task, "–", "–", "–", "–", f"skipped: {found['skipped']}")
            continue
        metric = headline(task)
        scored.add_row(
            task,
            str(found["trained_on"]),
            str(found["held_out"]),
            metric.replace("_", " "),
            f"{found['current'][metric]:.3f}",
            f"{found['trained'][metric]:.3f}",
        )
    console.print(scored)
