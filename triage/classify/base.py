"""The Classifier protocol and the factory that picks a backend from the settings."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from triage.message import SupportMessage, Triage
from triage.settings import Settings


class Classifier(Protocol):
    """Judges one message. Implementations must be safe to call from several threads."""

    name: str

    def classify(self, message: SupportMessage) -> Triage: ...


@runtime_checkable
class TaskConfidence(Protocol):
    """A classifier that can say how sure it is of each call, not only of the urgency (`confidence`)."""

    def task_confidence(self, message: SupportMessage, task: str) -> float: ...


class BackendUnavailable(Exception):
    """The configured backend cannot be built (missing model files, bad settings)."""


class LLMUnavailable(Exception):
    """The LLM gave no usable answer after retries (outage, rate limit, invalid output)."""


def make_classifier(settings: Settings) -> Classifier:
    backend = settings.classifier.backend
    if backend == "llm":
        from triage.classify.categories import load_categories
        from triage.classify.fallback import CircuitBreaker, FallbackClassifier
        from triage.classify.llm import LLMClassifier

        llm = settings.llm
        return FallbackClassifier(
            LLMClassifier(llm, load_categories(settings.classifier)),
            _offline(settings.classifier.fallback, settings),
            CircuitBreaker(llm.breaker_failures, llm.breaker_cooldown_s),
        )
    return _offline(backend, settings)


def check_backend(settings: Settings) -> None:
    """What the backend needs outside this process, checked before anything slow is loaded: the LLM's
    URL and key (BackendUnavailable, one clear line, rather than an outage per message)."""
    if settings.classifier.backend == "llm":
        from triage.classify.categories import load_categories
        from triage.classify.llm import LLMClassifier

        LLMClassifier(settings.llm, load_categories(settings.classifier)).check()


def _offline(backend: str, settings: Settings) -> Classifier:
    if backend == "rules":
        from triage.classify.categories import category_names
        from triage.classify.rules import RulesClassifier

        return RulesClassifier(categories=category_names(settings.classifier))
    from triage.classify.embedded import EmbeddedClassifier

    return EmbeddedClassifier.load(settings.classifier)
