"""`triage train`: fit an embedded head on a team's own labelled history (the warehouse -> model loop).

Features are the e5 sentence embeddings (for urgency followed by hashed word and character n-grams);
the head is a logistic regression. Classes are balanced within each source: the team's CSV and the
`--extra` rows each count as a class-balanced set, the extra rows scaled by `extra_weight`. For
urgency (urgent vs not) the decision threshold is the one with the best urgent-class F1 over 5-fold
out-of-fold predictions on the training data, never on a test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.class_weight import compute_sample_weight

from triage.classify.embedded import Encoder, Head, Ngrams, features
from triage.classify.evaluate import Example, Task


@dataclass(frozen=True)
class Recipe:
    """How a task's head is fitted: the regularisation C and the n-gram features, if any."""

    C: float
    ngrams: Ngrams | None


# Chosen by 5-fold CV on the public dev sets plus our support examples (README, "Embedded backend").
RECIPES: dict[Task, Recipe] = {
    "sentiment": Recipe(C=1.0, ngrams=None),
    "urgency": Recipe(C=4.0, ngrams=Ngrams(bits=16, scale=0.5)),
}


@dataclass(frozen=True)
class Trained:
    head: Head
    cv_f1: float  # urgent-class F1 (urgency) or macro-F1 (sentiment), 5-fold on the training data
    n: int


def sample_weights(labels: np.ndarray, sources: np.ndarray, source_weights: dict[int, float]) -> np.ndarray:
    """Class-balanced weights within each source, times that source's weight."""
    weights = np.zeros(len(labels))
    for source, weight in source_weights.items():
        rows = sources == source
        if rows.any():
            weights[rows] = weight * compute_sample_weight("balanced", labels[rows])
    return weights


def _model(recipe: Recipe) -> LogisticRegression:
    return LogisticRegression(C=recipe.C, max_iter=5000)


def _best_threshold(target: np.ndarray, p_urgent: np.ndarray) -> tuple[float, float]:
    """The P(urgent) cut with the best urgent-class F1, and that F1."""
    candidates = np.unique(np.quantile(p_urgent, np.linspace(0.5, 0.995, 200)))
    scores = [f1_score(target, p_urgent >= t, zero_division=0) for t in candidates]
    best = int(np.argmax(scores))
    return float(candidates[best]), float(scores[best])


def train(
    encoder: Encoder,
    examples: list[Example],
    task: Task,
    extra: list[Example] = (),
    extra_weight: float = 5.0,
) -> Trained:
    """Fit the task's head on `examples` plus `extra` rows; threshold and CV score from 5 folds."""
    recipe = RECIPES[task]
    rows = [*examples, *extra]
    texts = [example.text for example in rows]
    matrix = features(encoder.encode(texts), texts, recipe.ngrams)
    labels = np.array([example.label for example in rows])
    sources = np.array([0] * len(examples) + [1] * len(extra))
    if task == "urgency":
        labels = (labels == "urgent").astype(int)
        if labels.sum() < 5 or labels.sum() > len(labels) - 5:
            raise ValueError("urgency training needs at least 5 urgent and 5 other examples")
    weights = sample_weights(labels, sources, {0: 1.0, 1: extra_weight})
    out_of_fold = np.zeros(len(rows)) if task == "urgency" else np.empty(len(rows), dtype=object)
    for train_idx, test_idx in StratifiedKFold(5, shuffle=True, random_state=0).split(texts, labels):
        fitted = _model(recipe).fit(matrix[train_idx], labels[train_idx], sample_weight=weights[train_idx])
        if task == "urgency":
            out_of_fold[test_idx] = fitted.predict_proba(matrix[test_idx])[:, 1]
        else:
            out_of_fold[test_idx] = fitted.predict(matrix[test_idx])
    model = _model(recipe).fit(matrix, labels, sample_weight=weights)
    if task == "urgency":
        threshold, cv = _best_threshold(labels, out_of_fold)
        head = Head(["not_urgent", "urgent"], model.coef_, model.intercept_, threshold, recipe.ngrams)
    else:
        cv = f1_score(labels, out_of_fold.astype(str), average="macro")
        head = Head([str(c) for c in model.classes_], model.coef_, model.intercept_, None, recipe.ngrams)
    return Trained(head, round(float(cv), 4), len(rows))
