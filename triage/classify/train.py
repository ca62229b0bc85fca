"""`triage train`: fit an embedded head on a team's own labelled history (the warehouse -> model loop).

- sentiment: a class-balanced logistic regression on the e5 sentence embedding.
- urgency (needs fast action: high or urgent, versus not): the same on the embedding; its score is
  calibrated on 5-fold out-of-fold predictions (Platt scaling), and two thresholds are chosen on
  them: the decision threshold (the best urgent F1 among those that keep recall at 0.9 or more) and
  the stricter one for `urgent` (at most 2% of the not-urgent rows reach it).
- category (any label set): a logistic regression on the embedding joined with word and character
  n-gram TF-IDF features (triage.classify.features), which together beat either alone; each label's
  name, read as words, counts as one more example.
Every choice is made on out-of-fold predictions of the training data, never on a test set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold

from triage.classify.embedded import Encoder, Head, message_text
from triage.classify.evaluate import Example, Task
from triage.classify.features import NgramVocabulary

MIN_RECALL = 0.9  # urgency: the decision threshold keeps at least this out-of-fold recall
STRICT_FALSE_ALARMS = 0.02  # urgency: share of not-urgent rows allowed at the `urgent` threshold
CATEGORY_EMBEDDING_SCALE = 3.0  # chosen by cross-validation on BANKING77's training split
CATEGORY_C = 10.0
FOLDS = 5
LARGE = 3000  # rows: above it, category heads are checked on one held-out fifth, not five folds


@dataclass(frozen=True)
class Trained:
    head: Head
    cv_score: float  # out-of-fold: urgent F1 (urgency), macro-F1 (sentiment), accuracy (category)
    n: int
    validation: str = "5-fold CV"


def train(
    encoder: Encoder,
    examples: list[Example],
    task: Task,
    extra: list[Example] = (),
    extra_weight: float = 5.0,
) -> Trained:
    rows = [*examples, *extra]
    texts = [message_text(example.as_message()) for example in rows]  # as the worker reads them
    embeddings = encoder.encode(texts)
    weights = np.array([1.0] * len(examples) + [extra_weight] * len(extra))
    labels = np.array([example.label for example in rows])
    if task == "urgency":
        return _urgency(embeddings, (labels == "urgent").astype(int), weights)
    if task == "category":
        names = sorted(set(labels))
        named = [" ".join(re.split(r"[_\-\s]+", name)) for name in names]  # "card_arrival" -> "card arrival"
        return _category(embeddings, texts, labels, weights, (encoder.encode(named), named, names))
    return _sentiment(embeddings, labels, weights)


def _balanced(C: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight="balanced", max_iter=3000)


def _folds(labels: np.ndarray) -> StratifiedKFold:
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if smallest < 2:
        raise ValueError("every label needs at least 2 examples")
    return StratifiedKFold(min(FOLDS, smallest), shuffle=True, random_state=0)


def _sentiment(embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> Trained:
    out_of_fold = np.empty(len(labels), dtype=object)
    for train_idx, test_idx in _folds(labels).split(embeddings, labels):
        fitted = _balanced().fit(embeddings[train_idx], labels[train_idx], sample_weight=weights[train_idx])
        out_of_fold[test_idx] = fitted.predict(embeddings[test_idx])
    model = _balanced().fit(embeddings, labels, sample_weight=weights)
    head = Head([str(c) for c in model.classes_], model.coef_, model.intercept_)
    cv = f1_score(labels, out_of_fold.astype(str), average="macro")
    return Trained(head, round(float(cv), 4), len(labels))


def _urgency(embeddings: np.ndarray, target: np.ndarray, weights: np.ndarray) -> Trained:
    if target.sum() < 5 or target.sum() > len(target) - 5:
        raise ValueError("urgency training needs at least 5 urgent and 5 other examples")
    scores = np.zeros(len(target))
    for train_idx, test_idx in _folds(target).split(embeddings, target):
        fitted = _balanced().fit(embeddings[train_idx], target[train_idx], sample_weight=weights[train_idx])
        scores[test_idx] = fitted.decision_function(embeddings[test_idx])
    platt = LogisticRegression(C=1e6).fit(scores[:, None], target)
    calibration = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
    calibrated = platt.predict_proba(scores[:, None])[:, 1]
    threshold, best_f1 = decision_threshold(calibrated, target)
    strict = strict_threshold(calibrated, target, threshold)
    model = _balanced().fit(embeddings, target, sample_weight=weights)
    head = Head(
        ["not_urgent", "urgent"],
        model.coef_,
        model.intercept_,
        threshold=threshold,
        strict_threshold=strict,
        calibration=calibration,
    )
    return Trained(head, round(best_f1, 4), len(target))


def decision_threshold(p: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """The threshold with the best F1 among those whose recall is at least MIN_RECALL."""
    best = (0.5, -1.0)
    for t in np.unique(np.round(p, 4)):
        flagged = p >= t
        recall = flagged[target == 1].mean()
        if recall < MIN_RECALL:
            break
        f1 = float(f1_score(target, flagged, zero_division=0))
        if f1 > best[1]:
            best = (float(t), f1)
    return best


def strict_threshold(p: np.ndarray, target: np.ndarray, threshold: float) -> float:
    """The lowest threshold (not below the decision one) that at most STRICT_FALSE_ALARMS of the
    not-urgent rows reach."""
    calm = np.sort(p[target == 0])
    allowed = int(STRICT_FALSE_ALARMS * len(calm))
    above = calm[len(calm) - allowed - 1] if len(calm) > allowed else 0.0
    return float(max(threshold, np.nextafter(above, 1.0)))


def category_features(vocabulary: NgramVocabulary, embeddings: np.ndarray, texts: list[str]):
    return hstack([csr_matrix(embeddings * CATEGORY_EMBEDDING_SCALE), vocabulary.matrix(texts)]).tocsr()


def _category(
    embeddings: np.ndarray,
    texts: list[str],
    labels: np.ndarray,
    weights: np.ndarray,
    label_names: tuple[np.ndarray, list[str], list[str]],
) -> Trained:
    """Each label's own name ("card arrival") is one more training example in every fit, never scored."""
    name_embeddings, name_texts, name_labels = label_names

    def fit(rows: np.ndarray) -> tuple[NgramVocabulary, LogisticRegression]:
        chosen = [texts[i] for i in rows] + name_texts
        vocabulary = NgramVocabulary.fit(chosen, min_df=2 if len(rows) >= 2000 else 1)
        features = category_features(vocabulary, np.vstack([embeddings[rows], name_embeddings]), chosen)
        model = LogisticRegression(C=CATEGORY_C, max_iter=3000)
        model.fit(
            features,
            np.concatenate([labels[rows], name_labels]),
            sample_weight=np.concatenate([weights[rows], np.ones(len(name_labels))]),
        )
        return vocabulary, model

    folds = _folds(labels)
    splits = list(folds.split(embeddings, labels))
    if len(labels) > LARGE:  # each fit takes minutes here: one held-out fifth says enough
        splits, validation = splits[:1], "held-out fifth"
    else:
        validation = f"{folds.get_n_splits()}-fold CV"
    scored = np.concatenate([test_idx for _, test_idx in splits])
    out_of_fold = np.empty(len(labels), dtype=object)
    for train_idx, test_idx in splits:
        vocabulary, model = fit(train_idx)
        held_out = [texts[i] for i in test_idx]
        out_of_fold[test_idx] = model.predict(category_features(vocabulary, embeddings[test_idx], held_out))
    vocabulary, model = fit(np.arange(len(labels)))
    weights_, bias = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes; the head wants both
        weights_, bias = np.vstack([-weights_ / 2, weights_ / 2]), np.array([-bias[0] / 2, bias[0] / 2])
    head = Head(
        [str(c) for c in model.classes_],
        weights_,
        bias,
        vocabulary=vocabulary,
        embedding_scale=CATEGORY_EMBEDDING_SCALE,
    )
    accuracy = accuracy_score(labels[scored], out_of_fold[scored].astype(str))
    return Trained(head, round(float(accuracy), 4), len(labels), validation)
