"""Embeddings to compare support messages by meaning, for `group_by: [similar]`.

Raw e5 embeddings of support messages all point much the same way (cosine 0.85-0.95 between messages
about different problems), which leaves no room for a threshold. So the vectors are centred on the
mean of a corpus of support messages and their three strongest shared directions are removed
("all-but-the-top", Mu and Viswanath, ICLR 2018) before the cosine is taken. The mean and the
directions come from data/support_examples.csv (`python benchmarks/similarity.py --fit`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triage.classify.base import BackendUnavailable
from triage.classify.embedded import PACKAGED_MODELS, Encoder

PROJECTION = PACKAGED_MODELS / "similarity.npz"
SHARED_DIRECTIONS = 3


def fit_projection(vectors: np.ndarray, path: Path) -> None:
    """Save the corpus mean and its strongest shared directions."""
    mean = vectors.mean(axis=0)
    _, _, directions = np.linalg.svd(vectors - mean, full_matrices=False)
    np.savez_compressed(path, mean=mean.astype(np.float32), directions=directions[:SHARED_DIRECTIONS])


class Meaning:
    """Unit vectors whose cosine says how alike two messages are in what they are about."""

    def __init__(self, encoder: Encoder, projection: Path = PROJECTION) -> None:
        try:
            data = np.load(projection)
        except OSError as error:
            raise BackendUnavailable(f"cannot read {projection}: {error}") from None
        self.encoder = encoder
        self.mean = data["mean"].astype(np.float32)
        self.directions = data["directions"].astype(np.float32)

    def project(self, vectors: np.ndarray) -> np.ndarray:
        centred = vectors - self.mean
        specific = centred - (centred @ self.directions.T) @ self.directions
        return specific / np.linalg.norm(specific, axis=-1, keepdims=True)

    def vector(self, text: str) -> list[float]:
        [vector] = self.project(self.encoder.encode([text]))
        return [round(float(x), 5) for x in vector]
