"""Rebuild the packaged urgency heads and print their grouped cross-validation figures.

    python scripts/train_heads.py --forum-posts PATH/TO/urgency/dev.csv [--cache DIR]

- triage/classify/models/urgency.npz: the support expert, a class-balanced logistic regression on the
  e5 embedding joined with word and character n-grams of data/support_examples.csv (high or urgent
  versus not). Its score is calibrated
  (Platt) and its two thresholds chosen on out-of-fold predictions of a 5-fold cross-validation
  grouped by scenario (translations of one message stay in the same fold).
- triage/classify/models/urgency_router.npz: which expert judges a message: support-desk messages
  (data/support_examples.csv) versus community-forum posts (the MOOC forum posts' dev split).
- triage/classify/models/urgency_forum.npz (not rebuilt here): the forum expert, trained on the forum
  posts with the first 200 support examples (see docs/classification.md, "Data and licences").

`--cache DIR` keeps the embeddings as .npy files between runs (encoding is the slow part).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import GroupKFold

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from triage.classify.categories import load_categories  # noqa: E402
from triage.classify.embedded import (  # noqa: E402
    PACKAGED_MODELS,
    Encoder,
    Head,
    fit_category_head,
    urgency_level,
)
from triage.classify.evaluate import expected_calibration_error  # noqa: E402
from triage.classify.features import NgramVocabulary  # noqa: E402
from triage.classify.train import decision_threshold, strict_threshold  # noqa: E402
from triage.settings import ClassifierSettings  # noqa: E402

SUPPORT = REPO / "data" / "support_examples.csv"
SUPPORT_C = 3.0
SUPPORT_EMBEDDING_SCALE = 2.0  # the embedding (x2) joined with n-gram TF-IDF: grouped CV F1 0.918 vs 0.903
ROUTER_C = 1.0
LEVELS = ("low", "normal", "high", "urgent")


def embed(encoder: Encoder, texts: list[str], cache: Path | None) -> np.ndarray:
    if cache is None:
        return encoder.encode(texts)
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache / f"e5-{key}.npy"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, np.concatenate([encoder.encode(texts[i : i + 32]) for i in range(0, len(texts), 32)]))
    return np.load(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--forum-posts", type=Path, required=True, help="the forum posts' dev.csv (text column)"
    )
    parser.add_argument("--cache", type=Path, help="keep embeddings here")
    args = parser.parse_args()

    rows = list(csv.DictReader(SUPPORT.open(encoding="utf-8")))
    texts = [f"{r['subject']}\n{r['text']}" if r["subject"] else r["text"] for r in rows]
    forum_texts = [r["text"] for r in csv.DictReader(args.forum_posts.open(encoding="utf-8"))]
    encoder = Encoder()
    support, forum = embed(encoder, texts, args.cache), embed(encoder, forum_texts, args.cache)
    target = np.array([r["urgency"] in ("high", "urgent") for r in rows], int)
    groups = np.array([r["group"] for r in rows])

    scores, routed_to_forum = np.zeros(len(rows)), np.zeros(len(rows), bool)
    for train_idx, test_idx in GroupKFold(5).split(support, target, groups):
        model, vocabulary = fit_support_expert(
            support[train_idx], [texts[i] for i in train_idx], target[train_idx]
        )
        held_out = support_features(vocabulary, support[test_idx], [texts[i] for i in test_idx])
        scores[test_idx] = model.decision_function(held_out)
        router = fit_router(support[train_idx], forum)
        routed_to_forum[test_idx] = router.predict_proba(support[test_idx])[:, 1] >= 0.5
    platt = LogisticRegression(C=1e6).fit(scores[:, None], target)
    calibrated = platt.predict_proba(scores[:, None])[:, 1]
    threshold, _ = decision_threshold(calibrated, target)
    strict = strict_threshold(calibrated, target, threshold)
    report(rows, calibrated, threshold, strict)
    report_levels(encoder, rows, texts, support, calibrated, threshold, strict, routed_to_forum)

    model, vocabulary = fit_support_expert(support, texts, target)
    Head(
        ["not_urgent", "urgent"],
        model.coef_,
        model.intercept_,
        threshold=threshold,
        strict_threshold=strict,
        vocabulary=vocabulary,
        embedding_scale=SUPPORT_EMBEDDING_SCALE,
        calibration=(float(platt.coef_[0, 0]), float(platt.intercept_[0])),
    ).save(PACKAGED_MODELS / "urgency.npz", note=f"support expert, {SUPPORT.name} ({len(rows)} rows)")

    router = fit_router(support, forum)
    Head(["support", "forum"], router.coef_, router.intercept_, threshold=0.5).save(
        PACKAGED_MODELS / "urgency_router.npz", note="support messages versus forum posts"
    )
    print(f"saved urgency.npz (thresholds {threshold:.3f} / {strict:.3f}) and urgency_router.npz")


def support_features(vocabulary: NgramVocabulary, embeddings: np.ndarray, texts: list[str]):
    return hstack([csr_matrix(embeddings * SUPPORT_EMBEDDING_SCALE), vocabulary.matrix(texts)]).tocsr()


def fit_support_expert(
    embeddings: np.ndarray, texts: list[str], target: np.ndarray
) -> tuple[LogisticRegression, NgramVocabulary]:
    vocabulary = NgramVocabulary.fit(texts, min_df=1)
    model = LogisticRegression(C=SUPPORT_C, class_weight="balanced", max_iter=3000)
    return model.fit(support_features(vocabulary, embeddings, texts), target), vocabulary


def fit_router(support: np.ndarray, forum: np.ndarray) -> LogisticRegression:
    features = np.vstack([support, forum])
    origin = np.r_[np.zeros(len(support)), np.ones(len(forum))]
    return LogisticRegression(C=ROUTER_C, class_weight="balanced", max_iter=3000).fit(features, origin)


def report_levels(
    encoder: Encoder,
    rows: list[dict],
    texts: list[str],
    support: np.ndarray,
    p_support: np.ndarray,
    threshold: float,
    strict: float,
    routed_to_forum: np.ndarray,
) -> None:
    """The four levels as the classifier gives them (router, experts, the `low` rule with the packaged
    sentiment head and the category head fitted on config/categories.yaml), urgency out of fold."""
    sentiment = Head.load(PACKAGED_MODELS / "sentiment.npz")
    category = fit_category_head(encoder, load_categories(ClassifierSettings()))
    forum = Head.load(PACKAGED_MODELS / "urgency_forum.npz")
    expert = Head(["not_urgent", "urgent"], np.zeros((1, 1)), np.zeros(1), threshold, strict)
    predicted = []
    for i, text in enumerate(texts):
        row = support[i : i + 1]
        mood = sentiment.classes[int(sentiment.probabilities(row, [text]).argmax())]
        topic = category.classes[int(category.probabilities(row, [text]).argmax())]
        if routed_to_forum[i]:
            predicted.append(urgency_level(float(forum.probabilities(row)[0, 1]), forum, mood, topic))
        else:
            predicted.append(urgency_level(float(p_support[i]), expert, mood, topic))
    truth = [r["urgency"] for r in rows]
    precision, recall, _, counts = precision_recall_fscore_support(truth, predicted, labels=LEVELS)
    urgent, calm = np.isin(truth, ["high", "urgent"]), np.isin(truth, ["low", "normal"])
    flagged = np.isin(predicted, ["high", "urgent"])
    p, r, f1, _ = precision_recall_fscore_support(urgent, flagged, average="binary")
    called_urgent = (np.array(predicted)[calm] == "urgent").sum()
    print(f"the classifier, urgency out of fold ({routed_to_forum.sum()} routed to the forum expert):")
    print(f"  urgent (high+urgent) precision {p:.3f} recall {r:.3f} F1 {f1:.3f}; {called_urgent} of")
    print(
        f"  {calm.sum()} low/normal called urgent, {flagged[calm].sum()} flagged; category accuracy ", end=""
    )
    right = [c == row["category"] for c, row in zip(topics(category, support, texts), rows, strict=True)]
    print(f"{np.mean(right):.3f}")
    print("  | level | precision | recall | n |")
    for level, lp, lr, n in zip(LEVELS, precision, recall, counts, strict=True):
        print(f"  | {level} | {lp:.2f} | {lr:.2f} | {n} |")


def topics(category: Head, embeddings: np.ndarray, texts: list[str]) -> list[str]:
    return [category.classes[int(i)] for i in category.probabilities(embeddings, texts).argmax(axis=1)]


def report(rows: list[dict], p: np.ndarray, threshold: float, strict: float) -> None:
    """Out-of-fold figures on the support examples (the expert alone, without the router)."""
    truth = np.array([r["urgency"] for r in rows])
    urgent = np.isin(truth, ["high", "urgent"])
    flagged = p >= threshold
    predicted = np.where(p >= strict, "urgent", np.where(flagged, "high", "normal"))
    precision, recall, f1, _ = precision_recall_fscore_support(urgent, flagged, average="binary")
    calm = ~urgent
    ece = expected_calibration_error(list(np.where(flagged, p, 1 - p)), list(flagged == urgent))
    print(
        f"grouped 5-fold CV on {len(rows)} support examples: urgent (high+urgent) precision {precision:.3f}"
    )
    print(f"  recall {recall:.3f} F1 {f1:.3f}; {flagged[calm].sum()} of {calm.sum()} low/normal flagged,")
    print(f"  {(predicted[calm] == 'urgent').sum()} called urgent; calibration error {ece:.3f}")


if __name__ == "__main__":
    main()
