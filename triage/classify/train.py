"""`triage train`: fit an embedded head on a team's own labelled history (the warehouse -> model loop).

Features are the e5 sentence embeddings; the head is a class-balanced logistic regression. For
urgency (urgent vs not) the decision threshold is the one with the best urgent-class F1 over 5-fold
out-of-fold predictions on the training data, never on a test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from triage.classify.embedded import Encoder, Head
from triage.classify.evaluate import Example, Task


@dataclass(frozen=True)
class Trained:
    head: Head
    cv_f1: float  # urgent-class F1 (urgency) or macro-F1 (sentiment), 5-fold on the training data
    n: int


def _model() -> LogisticRegression:
    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000)


def train(
    encoder: Encoder,
    examples: list[Example],
    task: Task,
    extra: list[Example] = (),
    extra_weight: float = 5.0,
) -> Trained:
    rows = [*examples, *extra]
    features = encoder.encode([example.text for example in rows])
    weights = np.array([1.0] * len(examples) + [extra_weight] * len(extra))
    labels = np.array([example.label for example in rows])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    if task == "urgency":
        target = (labels == "urgent").astype(int)
        if target.sum() < 5 or target.sum() > len(target) - 5:
            raise ValueError("urgency training needs at least 5 urgent and 5 other examples")
        out_of_fold = np.zeros(len(rows))
        for train_idx, test_idx in folds.split(features, target):
            fitted = _model().fit(features[train_idx], target[train_idx], sample_weight=weights[train_idx])
            out_of_fold[test_idx] = fitted.predict_proba(features[test_idx])[:, 1]
        candidates = np.unique(np.quantile(out_of_fold, np.linspace(0.5, 0.995, 200)))
        scores = [f1_score(target, out_of_fold >= t, zero_division=0) for t in candidates]
        threshold = float(candidates[int(np.argmax(scores))])
        model = _model().fit(features, target, sample_weight=weights)
        head = Head(["not_urgent", "urgent"], model.coef_, model.intercept_, threshold)
        return Trained(head, round(float(max(scores)), 4), len(rows))
    out_of_fold_labels = np.empty(len(rows), dtype=object)
    for train_idx, test_idx in folds.split(features, labels):
        fitted = _model().fit(features[train_idx], labels[train_idx], sample_weight=weights[train_idx])
        out_of_fold_labels[test_idx] = fitted.predict(features[test_idx])
    model = _model().fit(features, labels, sample_weight=weights)
    head = Head([str(c) for c in model.classes_], model.coef_, model.intercept_, None)
    cv = f1_score(labels, out_of_fold_labels.astype(str), average="macro")
    return Trained(head, round(float(cv), 4), len(rows))
