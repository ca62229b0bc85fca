"""How `group_by: [similar]` should decide: at which cosine similarity a case joins an incident.

The worker keeps, per open incident, the normalised mean embedding of its first five cases; a new case
joins the incident it is most similar to when that similarity reaches `group_similarity`, else it opens
a new incident. A wrong split costs one more alert; a wrong merge hides a different problem inside an
incident, the worse error.

    python benchmarks/similarity.py data/incident_examples.csv   # incidents within a category
    python benchmarks/similarity.py path/to/banking77/train.csv  # intents (a text,label CSV)
    python benchmarks/similarity.py --fit data/support_examples.csv  # rebuild the shipped projection

With an `incident` column (and `category`): for each category, its incidents' messages arrive
interleaved in a random order (20 orders) and go through the worker's rule; the table gives, per
threshold, the alerts per true incident (1 is ideal) and the share of cases merged into another
incident. With `text,label` only: each label plays an incident whose first five messages make the
centroid, and the table gives how its later messages decide against 40 such incidents at once.
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from collections import Counter, defaultdict

import numpy as np

from triage.classify.embedded import Encoder
from triage.classify.meaning import PROJECTION, Meaning, fit_projection
from triage.store.incidents import CENTROID_CASES

THRESHOLDS = np.round(np.arange(0.16, 0.961, 0.02), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv")
    parser.add_argument("--fit", action="store_true", help="fit the projection on this CSV's texts")
    parser.add_argument("--raw", action="store_true", help="compare raw embeddings, without the projection")
    parser.add_argument("--orders", type=int, default=20, help="random arrival orders per category")
    parser.add_argument("--classes", type=int, default=40, help="text,label CSV: labels sampled")
    parser.add_argument("--per-class", type=int, default=30, help="text,label CSV: messages per label")
    args = parser.parse_args()
    with open(args.csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    encoder = Encoder()
    if args.fit:
        fit_projection(_encode(encoder, [row["text"] for row in rows]), PROJECTION)
        print(f"saved {PROJECTION} from {len(rows)} texts")
        return
    meaning = None if args.raw else Meaning(encoder)
    if "incident" in rows[0]:
        surges(encoder, meaning, rows, args.orders)
    else:
        intents(encoder, meaning, rows, args.classes, args.per_class)


def _encode(encoder: Encoder, texts: list[str], meaning: Meaning | None = None) -> np.ndarray:
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    print(f"encoded {len(texts)} texts in {time.perf_counter() - started:.1f}s")
    return meaning.project(vectors) if meaning else vectors


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def group_online(vectors: np.ndarray, threshold: float) -> list[int]:
    """The worker's rule, case by case: the incident each case ends in."""
    centroids: list[np.ndarray] = []
    counts: list[int] = []
    joined = []
    for vector in vectors:
        similarities = [float(c @ vector) for c in centroids]
        best = int(np.argmax(similarities)) if similarities else -1
        if best >= 0 and similarities[best] >= threshold:
            if counts[best] < CENTROID_CASES:
                centroids[best] = _unit(centroids[best] * counts[best] + vector)
                counts[best] += 1
            joined.append(best)
        else:
            centroids.append(vector.copy())
            counts.append(1)
            joined.append(len(centroids) - 1)
    return joined


def surges(encoder: Encoder, meaning: Meaning | None, rows: list[dict[str, str]], orders: int) -> None:
    vectors = _encode(encoder, [row["text"] for row in rows], meaning)
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_category[row["category"]].append(index)
    incidents = len({row["incident"] for row in rows})
    print(f"{len(rows)} messages, {incidents} incidents in {len(by_category)} categories")
    print("threshold   alerts per incident   cases merged into another incident")
    rng = random.Random(0)
    for threshold in THRESHOLDS:
        alerts, merged, cases = [], 0, 0
        for members in by_category.values():
            for _ in range(orders):
                order = rng.sample(members, len(members))
                joined = group_online(vectors[order], float(threshold))
                truth = [rows[i]["incident"] for i in order]
                owner = {
                    group: Counter(t for t, g in zip(truth, joined, strict=True) if g == group).most_common(
                        1
                    )[0][0]
                    for group in set(joined)
                }
                for incident in set(truth):
                    alerts.append(sum(1 for group, t in owner.items() if t == incident))
                merged += sum(1 for t, g in zip(truth, joined, strict=True) if owner[g] != t)
                cases += len(order)
        print(f"  {threshold:.2f}          {np.mean(alerts):5.2f}                 {merged / cases:6.1%}")


def intents(
    encoder: Encoder, meaning: Meaning | None, rows: list[dict[str, str]], classes: int, per_class: int
) -> None:
    by_label: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row["text"])
    rng = random.Random(0)
    labels = rng.sample(
        sorted(label for label, texts in by_label.items() if len(texts) >= per_class), classes
    )
    texts = [text for label in labels for text in rng.sample(by_label[label], per_class)]
    vectors = _encode(encoder, texts, meaning)
    vectors = vectors.reshape(classes, per_class, -1)
    centroids = np.stack([_unit(vectors[i, :CENTROID_CASES].mean(axis=0)) for i in range(classes)])
    cases = vectors[:, CENTROID_CASES:].reshape(-1, vectors.shape[-1])
    owner = np.repeat(np.arange(classes), per_class - CENTROID_CASES)
    similarity = cases @ centroids.T
    best, top = similarity.argmax(axis=1), similarity.max(axis=1)
    print("threshold   joins its own incident   joins another (merge)   opens a new one (split)")
    for threshold in THRESHOLDS:
        joins = top >= threshold
        right = float((joins & (best == owner)).mean())
        wrong = float((joins & (best != owner)).mean())
        split = 1 - right - wrong
        print(
            f"  {threshold:.2f}       {right:6.1%}                 {wrong:6.1%}                {split:6.1%}"
        )


if __name__ == "__main__":
    main()
