"""The Classifier protocol and the factory that picks a backend from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from triage.message import SupportMessage, Triage
from triage.settings import Settings

if TYPE_CHECKING:
    from triage.store import Store


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


def make_classifier(settings: Settings, store: Store | None = None) -> Classifier:
    """The configured backend. `store` (the worker's) gives the LLM the team's labelled examples and
    the daily budget today's spend of every worker; without it, only this process's spend counts."""
    backend = settings.classifier.backend
    if backend in ("llm", "cascade"):
        return _with_llm(settings, store)
    return _offline(backend, settings)


def check_backend(settings: Settings) -> None:
    """What the backend needs outside this process, checked before anything slow is loaded: the LLM's
    URL and key (BackendUnavailable, one clear line, rather than an outage per message)."""
    if settings.classifier.backend in ("llm", "cascade"):
        from triage.classify.categories import load_categories
        from triage.classify.llm import LLMClassifier

        LLMClassifier(settings.llm, load_categories(settings.classifier)).check()


def _with_llm(settings: Settings, store: Store | None) -> Classifier:
    """`llm` (the LLM judges, the fallback answers when it cannot) or `cascade` (the embedded model
    judges, the LLM where it matters); either with the team's examples and the daily budget."""
    from triage.classify.budget import DailyBudget
    from triage.classify.categories import load_categories
    from triage.classify.embedded import EmbeddedClassifier, Encoder
    from triage.classify.examples import ExampleBank
    from triage.classify.fallback import CircuitBreaker, FallbackClassifier
    from triage.classify.llm import LLMClassifier

    llm = settings.llm
    categories = load_categories(settings.classifier)
    cascade = settings.classifier.backend == "cascade"
    embedded = EmbeddedClassifier.load(settings.classifier) if cascade else None
    fallback = embedded or _offline(settings.classifier.fallback, settings)
    examples = None
    if llm.examples:
        encoder = getattr(fallback, "encoder", None) or Encoder()
        examples = ExampleBank(encoder, categories, llm.examples, llm.examples_tokens, store)
    budget = DailyBudget(llm.daily_budget_usd, store) if llm.daily_budget_usd else None
    guarded = FallbackClassifier(
        LLMClassifier(llm, categories, examples),
        fallback,
        CircuitBreaker(llm.breaker_failures, llm.breaker_cooldown_s),
        budget,
    )
    if embedded is None:
        return guarded
    from triage.classify.cascade import AskRule, CascadeClassifier, routed_categories
    from triage.routing import Vocabulary, load_routing

    tree = load_routing(settings.routing_path(), Vocabulary.from_settings(settings))
    routed = routed_categories(tree, embedded.category.classes)
    return CascadeClassifier(embedded, guarded, AskRule.from_settings(settings.cascade, routed))


def _offline(backend: str, settings: Settings) -> Classifier:
    if backend == "rules":
        from triage.classify.categories import category_names
        from triage.classify.rules import RulesClassifier

        return RulesClassifier(categories=category_names(settings.classifier))
    from triage.classify.embedded import EmbeddedClassifier

    return EmbeddedClassifier.load(settings.classifier)
