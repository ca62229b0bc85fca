"""The team's labelled messages in the LLM's prompt: the k nearest to the message judged.

Two sources: the store's labels (corrections and confirmations from Slack and the helpdesk,
triage/store/feedback.py), newest label per field, and the categories file's examples. Each is
PII-masked and put between <labelled_example> tags, which the system prompt declares data; nearest by
the embedded encoder's cosine similarity, nearest first, within a token budget (about 4 characters a
token). The store is read again every REFRESH_S seconds for labels given since.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from triage.classify.categories import Category
from triage.classify.embedded import Encoder, message_text
from triage.classify.redact import redact
from triage.message import URGENCY_ORDER, SupportMessage
from triage.store import Store
from triage.store.tables import LabelRow, MessageRow

EXAMPLE = "labelled_example"
FENCE = "customer_message"
TAGS = (FENCE, EXAMPLE)
REFRESH_S = 60.0
EXAMPLE_CHARS = 600  # one example's text at most (longer ones are cut)
CHARS_PER_TOKEN = 4
TAG_TOKENS = 16  # an example's tags and labels, roughly
PREFIX = "Messages the team labelled, most similar first:\n"


def defang(text: str) -> str:
    """Text that cannot open or close a fence or an example: a forged tag gets a space after `<`."""
    for tag in TAGS:
        text = text.replace(f"</{tag}", f"</ {tag}").replace(f"<{tag}", f"< {tag}")
    return text


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Labelled:
    text: str  # PII-masked, cut to EXAMPLE_CHARS
    labels: tuple[tuple[str, str], ...]  # (field, value): urgency and/or category

    def render(self) -> str:
        attributes = "".join(f' {field}="{value}"' for field, value in self.labels)
        return f"<{EXAMPLE}{attributes}>\n{defang(self.text)}\n</{EXAMPLE}>"


def masked(text: str) -> str:
    text = redact(" ".join(text.split())).text
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


class ExampleBank:
    """Thread-safe: the worker's threads share one bank."""

    def __init__(
        self,
        encoder: Encoder,
        categories: Sequence[Category],
        k: int,
        max_tokens: int,
        store: Store | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.encoder = encoder
        self.k = k
        self.max_tokens = max_tokens
        self.store = store
        self.clock = clock
        self.names = {category.name for category in categories}
        self._lock = threading.Lock()
        self._fixed = [
            Labelled(masked(text), (("category", category.name),))
            for category in categories
            for text in category.examples
        ]
        self._fixed_vectors = self._unit(encoder.encode([item.text for item in self._fixed]))
        self._team: dict[str, Labelled] = {}  # by message id
        self._team_labels: dict[str, dict[str, str]] = {}
        self._team_vectors: dict[str, np.ndarray] = {}
        self._last_label_id = 0
        self._read_at: float | None = None

    @staticmethod
    def _unit(vectors: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def nearest(self, message: SupportMessage) -> list[Labelled]:
        """The k nearest labelled messages that fit in the token budget, nearest first."""
        self._refresh()
        with self._lock:
            items = self._fixed + list(self._team.values())
            vectors = [self._fixed_vectors, *(self._team_vectors[m][None, :] for m in self._team)]
        if not items or self.k == 0:
            return []
        query = self._unit(self.encoder.encode([message_text(message)]))[0]
        similarity = np.vstack(vectors) @ query
        chosen, used = [], 0
        for index in np.argsort(-similarity, kind="stable"):
            cost = tokens(items[index].text) + TAG_TOKENS
            if used + cost > self.max_tokens:
                continue
            chosen.append(items[index])
            used += cost
            if len(chosen) == self.k:
                break
        return chosen

    def render(self, message: SupportMessage) -> str:
        """The examples' part of the user turn (empty when there are none)."""
        examples = self.nearest(message)
        if not examples:
            return ""
        return PREFIX + "\n".join(example.render() for example in examples) + "\n\n"

    def _refresh(self) -> None:
        """Read the labels given since the last read, at most every REFRESH_S seconds."""
        if self.store is None:
            return
        with self._lock:
            if self._read_at is not None and self.clock() - self._read_at < REFRESH_S:
                return
            self._read_at = self.clock()
            query = (
                select(
                    LabelRow.id, LabelRow.message_id, LabelRow.field, LabelRow.team_value, MessageRow.parsed
                )
                .join(MessageRow, MessageRow.id == LabelRow.message_id)
                .where(LabelRow.id > self._last_label_id, LabelRow.field.in_(("urgency", "category")))
                .order_by(LabelRow.id)
            )
            with self.store.session(read_only=True) as session:
                rows = session.execute(query).all()
            texts: dict[str, str] = {}
            for label_id, message_id, field, value, parsed in rows:
                self._last_label_id = max(self._last_label_id, label_id)
                if (field == "urgency" and value not in URGENCY_ORDER) or (
                    field == "category" and value not in self.names
                ):
                    continue  # a value the prompt's schema does not know
                self._team_labels.setdefault(message_id, {})[field] = value
                if message_id not in self._team_vectors:
                    texts[message_id] = masked(message_text(SupportMessage.model_validate(parsed)))
                elif message_id in self._team:
                    texts.setdefault(message_id, self._team[message_id].text)
            new = [message_id for message_id in texts if message_id not in self._team_vectors]
            if new:
                for message_id, vector in zip(
                    new, self._unit(self.encoder.encode([texts[m] for m in new])), strict=True
                ):
                    self._team_vectors[message_id] = vector
            for message_id, text in texts.items():
                labels = self._team_labels[message_id]
                self._team[message_id] = Labelled(text, tuple(sorted(labels.items(), reverse=True)))
