"""`triage eval`: score a classifier on a labelled CSV (columns `text`, `label`).

Urgency is scored as the binary question support leads ask, "is this urgent?": `high` and `urgent`
count as urgent, `low` and `normal` as not (labels in the CSV may be either the four levels or
urgent/normal).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from triage.classify.base import Classifier
from triage.message import SupportMessage, Triage

Task = Literal["sentiment", "urgency"]
URGENT_LEVELS = {"urgent", "high"}
LABELS: dict[str, list[str]] = {
    "sentiment": ["negative", "neutral", "positive"],
    "urgency": ["normal", "urgent"],
}


class EvalDataError(Exception):
    pass


@dataclass(frozen=True)
class Example:
    text: str
    label: str


def read_examples(path: Path, task: Task) -> list[Example]:
    """Rows of `text` and `label`; a CSV without `label` may name the column after the task."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or [])
            label_column = "label" if "label" in columns or task not in columns else task
            missing = {"text", label_column} - columns
            if missing:
                raise EvalDataError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            examples = []
            for line, row in enumerate(reader, start=2):
                label = normalise_label(row[label_column], task)
                if label is None:
                    raise EvalDataError(f"{path}:{line}: label {row[label_column]!r} is not a {task} label")
                if (row["text"] or "").strip():
                    examples.append(Example(row["text"], label))
    except OSError as error:
        raise EvalDataError(f"{path}: {error.strerror}") from None
    if not examples:
        raise EvalDataError(f"{path}: no labelled rows")
    return examples


def normalise_label(raw: str, task: Task) -> str | None:
    label = (raw or "").strip().lower()
    if task == "urgency":
        if label in URGENT_LEVELS:
            return "urgent"
        return "normal" if label in {"normal", "low"} else None
    return label if label in LABELS["sentiment"] else None


def predicted_label(triage: Triage, task: Task) -> str:
    if task == "urgency":
        return "urgent" if triage.urgency in URGENT_LEVELS else "normal"
    return triage.sentiment


def classify_all(classifier: Classifier, texts: Iterable[str], workers: int) -> list[Triage]:
    messages = [SupportMessage(id=f"eval-{i}", body=text) for i, text in enumerate(texts)]
    if workers <= 1:
        return [classifier.classify(message) for message in messages]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(classifier.classify, messages))


def evaluate(classifier: Classifier, examples: list[Example], task: Task, workers: int = 1) -> dict[str, Any]:
    started = time.perf_counter()
    results = classify_all(classifier, (example.text for example in examples), workers)
    elapsed = time.perf_counter() - started
    truth = [example.label for example in examples]
    predicted = [predicted_label(result, task) for result in results]
    labels = LABELS[task]
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    return {
        "task": task,
        "model": classifier.name,
        "n": len(examples),
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(
            float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)), 4
        ),
        "per_class": {
            label: {
                "precision": round(float(p), 4),
                "recall": round(float(r), 4),
                "f1": round(float(f), 4),
                "support": int(s),
            }
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": {
            "labels": labels,
            "rows_true_columns_predicted": confusion_matrix(truth, predicted, labels=labels).tolist(),
        },
        "degraded": sum(result.degraded for result in results),
        "prompt_tokens": sum(result.prompt_tokens for result in results),
        "completion_tokens": sum(result.completion_tokens for result in results),
        "cost_usd": round(sum(result.cost_usd for result in results), 6),
        "seconds": round(elapsed, 2),
        "messages_per_s": round(len(examples) / elapsed, 1) if elapsed else None,
    }
