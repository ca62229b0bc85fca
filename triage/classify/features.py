"""Word and character n-gram features (TF-IDF), computed with the standard library and numpy only.

The embedded heads combine them with the e5 sentence embedding: the embedding knows meaning across
languages, the n-grams know the exact words a team's messages use ("PO number", "webhook", "chargeback").
The same code builds the vocabulary when a head is trained and turns a message into features when
the worker classifies it, so training and serving cannot disagree about a feature.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)
CHAR_SIZES = range(2, 6)  # character n-grams inside word boundaries, as scikit-learn's "char_wb"


def ngrams(text: str) -> Counter[str]:
    """Word 1-2-grams (prefixed `w:`) and character 2-5-grams of each padded word (prefixed `c:`)."""
    words = WORD.findall(text.lower())
    grams: Counter[str] = Counter(f"w:{word}" for word in words)
    grams.update(f"w:{a} {b}" for a, b in itertools.pairwise(words))
    for word in words:
        padded = f" {word} "
        for size in CHAR_SIZES:
            grams.update(f"c:{padded[i : i + size]}" for i in range(len(padded) - size + 1))
    return grams


@dataclass(frozen=True)
class NgramVocabulary:
    """The n-grams kept at training time and their inverse document frequencies."""

    terms: list[str]
    idf: np.ndarray

    @classmethod
    def fit(cls, texts: Sequence[str], min_df: int = 2, max_terms: int = 200_000) -> NgramVocabulary:
        document_frequency: Counter[str] = Counter()
        for text in texts:
            document_frequency.update(ngrams(text).keys())
        kept = [term for term, df in document_frequency.items() if df >= min_df]
        kept.sort(key=lambda term: (-document_frequency[term], term))
        kept = sorted(kept[:max_terms])
        n = len(texts)
        idf = np.array([math.log((1 + n) / (1 + document_frequency[t])) + 1 for t in kept], np.float32)
        return cls(kept, idf)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {term: i for i, term in enumerate(self.terms)})

    def sparse_row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(column indices, values) of one text: sublinear tf x idf, L2-normalised."""
        index: dict[str, int] = self._index  # type: ignore[attr-defined]
        found = [(index[term], count) for term, count in ngrams(text).items() if term in index]
        if not found:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        columns = np.array([column for column, _ in found], np.int64)
        values = np.array([1.0 + math.log(count) for _, count in found], np.float32) * self.idf[columns]
        return columns, values / np.linalg.norm(values)

    def matrix(self, texts: Iterable[str]):  # -> scipy.sparse.csr_matrix (training only)
        from scipy.sparse import csr_matrix

        rows = [self.sparse_row(text) for text in texts]
        indptr = np.cumsum([0, *(len(columns) for columns, _ in rows)])
        columns = np.concatenate([c for c, _ in rows]) if rows else np.zeros(0, np.int64)
        values = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, np.float32)
        return csr_matrix((values, columns, indptr), shape=(len(rows), len(self.terms)))
