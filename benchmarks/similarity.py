"""How `group_by: [similar]` should decide: at which cosine similarity a case joins an incident.

A case joins the open incident whose first cases (the normalised mean of up to five embeddings, as the
worker keeps it) it is closest to, when the similarity reaches `group_similarity`. Here each labelled
class (an intent: one problem, written by many customers) plays an incident: its first five messages make
the centroid; its other messages should join (a wrong split is one more alert), messages of every other
class should not (a wrong merge hides a different problem inside an incident, the worse error).

    python benchmarks/similarity.py path/to/labelled.csv [--classes 40] [--per-class 30]

The CSV has `text,label` columns, e.g. BANKING77's train.csv (customer queries, 77 intents).
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from collections import defaultdict

import numpy as np

from triage.classify.embedded import Encoder

FIRST_CASES = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv")
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    by_label: dict[str, list[str]] = defaultdict(list)
    with open(args.csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_label[row["label"]].append(row["text"])
    rng = random.Random(args.seed)
    labels = rng.sample(
        sorted(label for label, texts in by_label.items() if len(texts) >= args.per_class), args.classes
    )
    texts = {label: rng.sample(by_label[label], args.per_class) for label in labels}

    encoder = Encoder()
    started = time.perf_counter()
    vectors = {label: encoder.encode(texts[label]) for label in labels}
    seconds = time.perf_counter() - started
    print(f"encoded {args.classes * args.per_class} texts in {seconds:.1f}s")

    centroids = np.stack([_centroid(vectors[label][:FIRST_CASES]) for label in labels])
    cases = np.concatenate([vectors[label][FIRST_CASES:] for label in labels])
    owner = np.repeat(np.arange(len(labels)), args.per_class - FIRST_CASES)
    similarity = cases @ centroids.T  # every later case against every incident's first cases
    own = similarity[np.arange(len(cases)), owner]
    best = similarity.argmax(axis=1)
    print(
        f"similarity to its own incident:     median {np.median(own):.3f}, 5th percentile {np.percentile(own, 5):.3f}"
    )
    others = similarity[np.arange(len(similarity.ravel())) % len(labels) != np.repeat(owner, len(labels))]
    print(
        f"similarity to another incident:     median {np.median(others):.3f}, 99th percentile {np.percentile(others, 99):.3f}"
    )
    print("threshold   joins its own incident   joins another (merge)   opens a new one (split)")
    for threshold in np.arange(0.86, 0.951, 0.01):
        joins = similarity.max(axis=1) >= threshold
        right = float((joins & (best == owner)).mean())
        wrong = float((joins & (best != owner)).mean())
        print(
            f"  {threshold:.2f}       {right:6.1%}                 {wrong:6.1%}                {1 - right - wrong:6.1%}"
        )


def _centroid(first: np.ndarray) -> np.ndarray:
    mean = first.mean(axis=0)
    return mean / np.linalg.norm(mean)


if __name__ == "__main__":
    main()
