"""Learning from the store: the team's labels become training data (`triage train --from-store`), and
`triage eval --from-store` says how often the model and the team agree and what a head trained on the
team's labels would score on labels it did not see.

Ground truth is a person's latest label for a message's field, a correction or a confirmation; the
model's own judgements never are. The held-out check is a time split: a head is trained on the earlier
labels and scored, beside the embedded model as it is configured now, on the latest ones (as it would
have met them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sqlalchemy import select

from triage.classify.base import Classifier
from triage.classify.embedded import Encoder, Head, message_text
from triage.classify.evaluate import URGENT_LEVELS, EvalDataError, Example, Task
from triage.classify.train import Trained, train
from triage.message import SupportMessage, Triage
from triage.store import Store
from triage.store.tables import LabelRow, MessageRow

TASKS: tuple[Task, ...] = ("urgency", "sentiment", "category")
HELD_OUT_SHARE = 0.2  # the latest fifth of the labels is held out
# A class with fewer labels is left out rather than learned from one or two examples, which the
# head's cross-validation could hardly check.
MIN_PER_CLASS = 5


class NotEnoughLabels(EvalDataError):
    """The store has too few labels to train or score a head; the message says how many it has."""


@dataclass(frozen=True)
class Labelled:
    """A message a person labelled: the team's class and the model's, as the head learns them, and
    whether the person kept the model's exact value (`high` for `urgent` is a correction, as the
    report counts it, though both are the class `urgent`)."""

    message: SupportMessage
    label: str
    model: str
    at: datetime
    agreed: bool


def as_class(task: Task, value: str) -> str:
    """The class a head learns: urgency is urgent (high or urgent) or normal, as `triage eval` scores it."""
    if task == "urgency":
        return "urgent" if value in URGENT_LEVELS else "normal"
    return value


def judged(triage: Triage, task: Task) -> str:
    return as_class(task, getattr(triage, task))


def labelled(store: Store, task: Task, since: datetime) -> list[Labelled]:
    """Each message with a label for `task` given since `since`, with its latest label; oldest first."""
    query = (
        select(LabelRow, MessageRow.parsed)
        .join(MessageRow, MessageRow.id == LabelRow.message_id)
        .where(LabelRow.field == task, LabelRow.labelled_at >= since)
        .order_by(LabelRow.labelled_at, LabelRow.id)
    )
    latest: dict[str, Labelled] = {}
    with store.session(read_only=True) as session:
        for label, parsed in session.execute(query):
            latest[label.message_id] = Labelled(
                SupportMessage.model_validate(parsed),
                as_class(task, label.team_value),
                as_class(task, label.model_value),
                _utc(label.labelled_at),
                label.team_value == label.model_value,
            )
    return sorted(latest.values(), key=lambda item: item.at)


def trainable(examples: list[Labelled]) -> tuple[list[Labelled], dict[str, int]]:
    """The examples of classes with at least MIN_PER_CLASS labels, and the classes left out (with counts)."""
    counts = Counter(example.label for example in examples)
    rare = {label: n for label, n in sorted(counts.items()) if n < MIN_PER_CLASS}
    return [example for example in examples if example.label not in rare], rare


def fit(
    encoder: Encoder,
    examples: list[Labelled],
    task: Task,
    extra: list[Example] | None = None,
    extra_weight: float = 5.0,
) -> Trained:
    """A head fitted on the examples (and `extra` labelled rows); NotEnoughLabels when it cannot be."""
    kept, _ = trainable(examples)
    if len({example.label for example in kept} | {row.label for row in extra or []}) < 2:
        raise NotEnoughLabels(
            f"{len(examples)} {task} labels, {len(kept)} in classes with at least {MIN_PER_CLASS} "
            f"labels: a head needs two such classes"
        )
    rows = [Example(message_text(example.message), example.label) for example in kept]
    try:
        return train(encoder, rows, task, extra or [], extra_weight)
    except ValueError as error:
        raise NotEnoughLabels(f"{task}: {error}") from None


def agreement(store: Store, since: datetime) -> dict[str, dict[str, Any]]:
    """Per field: messages labelled since `since` (latest label each), and how often the model's value
    was the team's, exactly (as the report's "Model vs team" counts it)."""
    found = {}
    for task in TASKS:
        examples = labelled(store, task, since)
        agreed = sum(example.agreed for example in examples)
        found[task] = {
            "labels": len(examples),
            "agreed": agreed,
            "agreement": round(agreed / len(examples), 4) if examples else None,
        }
    return found


def held_out(encoder: Encoder, current: Classifier, examples: list[Labelled], task: Task) -> dict[str, Any]:
    """Train on the earlier labels, score the trained head and the current model on the latest ones."""
    cut = round(len(examples) * (1 - HELD_OUT_SHARE))
    earlier, later = examples[:cut], examples[cut:]
    if not later:
        raise NotEnoughLabels(f"{len(examples)} {task} labels: none left to hold out")
    trained = fit(encoder, earlier, task)
    truth = [example.label for example in later]
    now = [judged(current.classify(example.message), task) for example in later]
    texts = [message_text(example.message) for example in later]
    new = predict(trained.head, encoder.encode(texts), texts, task)
    return {
        "trained_on": len(earlier),
        "held_out": len(later),
        "held_out_from": _iso(later[0].at),
        "classes_left_out": trainable(earlier)[1],
        "current": {"model": current.name, **scores(truth, now, task)},
        "trained": {
            "model": f"head trained on the {len(earlier)} earlier labels",
            **scores(truth, new, task),
        },
    }


def predict(head: Head, embeddings: np.ndarray, texts: list[str], task: Task) -> list[str]:
    """What a freshly trained head says (urgency: urgent at its decision threshold, as `high` is)."""
    probabilities = head.probabilities(embeddings, texts)
    if task == "urgency":
        threshold = head.threshold if head.threshold is not None else 0.5
        return ["urgent" if p >= threshold else "normal" for p in probabilities[:, 1]]
    return [head.classes[i] for i in probabilities.argmax(axis=1)]


def scores(truth: list[str], predicted: list[str], task: Task) -> dict[str, Any]:
    """Accuracy and macro-F1; for urgency also the urgent class's precision, recall and F1."""
    classes = sorted(set(truth) | set(predicted))
    found: dict[str, Any] = {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(
            float(f1_score(truth, predicted, labels=classes, average="macro", zero_division=0)), 4
        ),
    }
    if task == "urgency":
        precision, recall, f1, _ = precision_recall_fscore_support(
            truth, predicted, labels=["urgent"], zero_division=0
        )
        found.update(
            urgent_precision=round(float(precision[0]), 4),
            urgent_recall=round(float(recall[0]), 4),
            urgent_f1=round(float(f1[0]), 4),
        )
    return found


def headline(task: Task) -> str:
    """The figure a task is judged by: urgent F1 (a missed urgent case is the worst error), else
    macro-F1 for sentiment and accuracy for category."""
    return {"urgency": "urgent_f1", "sentiment": "macro_f1", "category": "accuracy"}[task]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
