"""`triage eval`: score a classifier on a labelled CSV (columns `text`, `label`, and `subject` if the
messages have one: it is read as the worker reads a message's subject).

Urgency is scored as the binary question support leads ask, "is this urgent?": `high` and `urgent`
count as urgent, `low` and `normal` as not (labels in the CSV may be either the four levels or
urgent/normal). Category labels are whatever names the CSV uses. Macro-F1 averages over the classes
that occur in the labels or the predictions. Rows without text are counted and reported, not scored.
"""

from __future__ import annotations

import csv
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from triage.classify.base import Classifier, TaskConfidence
from triage.message import SupportMessage, Triage

Task = Literal["sentiment", "urgency", "category"]
URGENT_LEVELS = {"urgent", "high"}
LABELS: dict[str, list[str]] = {
    "sentiment": ["negative", "neutral", "positive"],
    "urgency": ["normal", "urgent"],
}
CALIBRATION_BINS = 10
EXCERPT = 80


class EvalDataError(Exception):
    pass


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    line: int = 0  # in the CSV file
    subject: str | None = None

    def as_message(self, index: int = 0) -> SupportMessage:
        return SupportMessage(id=f"eval-{index}", body=self.text, subject=self.subject)


@dataclass(frozen=True)
class LabelledFile:
    examples: list[Example]
    empty_lines: list[int] = field(default_factory=list)  # rows with a label but no text


def read_examples(path: Path, task: Task) -> LabelledFile:
    """Rows of `text` and `label` (and `subject`, when the CSV has it); a CSV without `label` may name
    the column after the task."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or [])
            label_column = "label" if "label" in columns or task not in columns else task
            missing = {"text", label_column} - columns
            if missing:
                raise EvalDataError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            examples, empty = [], []
            for row in reader:
                line = reader.line_num
                label = normalise_label(row[label_column], task)
                if label is None:
                    raise EvalDataError(f"{path}:{line}: label {row[label_column]!r} is not a {task} label")
                if (row["text"] or "").strip():
                    subject = (row.get("subject") or "").strip() or None
                    examples.append(Example(row["text"], label, line, subject))
                else:
                    empty.append(line)
    except OSError as error:
        raise EvalDataError(f"{path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise EvalDataError(f"{path}: not UTF-8 ({error.reason} at byte {error.start})") from None
    if not examples:
        raise EvalDataError(f"{path}: no labelled rows")
    return LabelledFile(examples, empty)


def normalise_label(raw: str | None, task: Task) -> str | None:
    label = (raw or "").strip()
    if task == "category":
        return label or None
    label = label.lower()
    if task == "urgency":
        if label in URGENT_LEVELS:
            return "urgent"
        return "normal" if label in {"normal", "low"} else None
    return label if label in LABELS["sentiment"] else None


def predicted_label(triage: Triage, task: Task) -> str:
    if task == "urgency":
        return "urgent" if triage.urgency in URGENT_LEVELS else "normal"
    if task == "category":
        return triage.category
    return triage.sentiment


def classify_all(classifier: Classifier, examples: Iterable[Example], workers: int) -> list[Triage]:
    messages = [example.as_message(i) for i, example in enumerate(examples)]
    if workers <= 1:
        return [classifier.classify(message) for message in messages]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(classifier.classify, messages))


def _confidences(
    classifier: Classifier, examples: list[Example], results: list[Triage], wrong: list[int], task: Task
) -> dict[int, float | None]:
    """How sure the classifier was of each mistake's call for this task: a result's `confidence` is
    the urgency's, so the other tasks ask the classifier (None when it cannot say)."""
    if task == "urgency":
        return {i: results[i].confidence for i in wrong}
    if isinstance(classifier, TaskConfidence):
        return {i: classifier.task_confidence(examples[i].as_message(i), task) for i in wrong}
    return {i: None for i in wrong}


def expected_calibration_error(confidence: list[float], correct: list[bool]) -> float:
    """Sum over ten equal-width confidence bins of |accuracy - mean confidence| x the bin's share."""
    confidences, hits = np.asarray(confidence, float), np.asarray(correct, float)
    bins = np.minimum((confidences * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    error = 0.0
    for b in np.unique(bins):
        members = bins == b
        error += members.mean() * abs(hits[members].mean() - confidences[members].mean())
    return float(error)


def evaluate(
    classifier: Classifier,
    data: LabelledFile,
    task: Task,
    workers: int = 1,
    errors: int = 0,
) -> dict[str, Any]:
    # Here, not at the top: `triage dlq` and `triage run` import this module and need no sklearn.
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    examples = data.examples
    started, cpu_started = time.perf_counter(), time.process_time()
    results = classify_all(classifier, examples, workers)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    truth = [example.label for example in examples]
    predicted = [predicted_label(result, task) for result in results]
    present = sorted(set(truth) | set(predicted))
    labels = [label for label in LABELS.get(task, present) if label in present] or present
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    correct = [t == p for t, p in zip(truth, predicted, strict=True)]
    confused = Counter((t, p) for t, p in zip(truth, predicted, strict=True) if t != p)
    wrong = [i for i, ok in enumerate(correct) if not ok]
    confidence = _confidences(classifier, examples, results, wrong if errors else [], task)
    wrong = sorted(wrong, key=lambda i: -(confidence.get(i) or 0.0))[:errors]  # none: in file order
    report: dict[str, Any] = {
        "task": task,
        "model": classifier.name,
        "n": len(examples),
        "empty_rows": len(data.empty_lines),
        "empty_row_lines": data.empty_lines,
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
        "most_confused": [{"label": t, "predicted": p, "count": n} for (t, p), n in confused.most_common(10)],
        "errors": [
            {
                "line": examples[i].line,
                "text": _excerpt(examples[i].text),
                "label": truth[i],
                "predicted": predicted[i],
                "confidence": confidence.get(i),
            }
            for i in wrong
        ],
        "errors_ranked_by": (
            f"{task} confidence"
            if task == "urgency" or isinstance(classifier, TaskConfidence)
            else f"line: {classifier.name} gives no {task} confidence"
        ),
        "degraded": sum(result.degraded for result in results),
        "prompt_tokens": sum(result.prompt_tokens for result in results),
        "completion_tokens": sum(result.completion_tokens for result in results),
        "cost_usd": round(sum(result.cost_usd for result in results), 6),
        "cost_usd_per_1000": round(1000 * sum(result.cost_usd for result in results) / len(results), 4),
        # asked the LLM: it decided, or it was asked and could not answer (degraded)
        "llm_share": round(sum(r.decided_by == "llm" or r.degraded for r in results) / len(results), 4),
        "flagged_share": round(sum(r.urgency in URGENT_LEVELS for r in results) / len(results), 4),
        "cpu_s_per_1000": round(1000 * cpu / len(results), 2),
        "seconds": round(elapsed, 2),
        "messages_per_s": round(len(examples) / elapsed, 1) if elapsed else None,
    }
    if task == "urgency":  # `confidence` is the model's confidence in its urgency call
        ece = expected_calibration_error([r.confidence for r in results], correct)
        report["calibration_error"] = round(ece, 4)
    with warnings.catch_warnings():  # scikit-learn warns of one label even when given `labels`
        warnings.filterwarnings("ignore", message="A single label was found")
        matrix = confusion_matrix(truth, predicted, labels=labels)
    report["confusion_matrix"] = {"labels": labels, "rows_true_columns_predicted": matrix.tolist()}
    return report


def _excerpt(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= EXCERPT else line[: EXCERPT - 1] + "…"
