"""The cascade (TRIAGE_CLASSIFIER__BACKEND=cascade): the embedded model judges every message, and the
LLM is asked only where its answer can change who is woken up or where a case goes:

- `flagged`: the embedded model calls the message high or urgent (a page is at stake);
- `unsure`: its confidence in the urgency call is below TRIAGE_CASCADE__ASK_BELOW;
- `category`: its category head is below TRIAGE_CASCADE__CATEGORY_BELOW and its category, or the
  runner-up, is one the routing file matches on.

Everything else keeps the embedded answer (`decided_by: embedded`). When the LLM cannot answer (an
outage, an open circuit, the daily budget) the embedded answer stands, marked degraded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from triage.classify.embedded import Assessment, EmbeddedClassifier
from triage.classify.fallback import FallbackClassifier
from triage.message import SupportMessage, Triage
from triage.ops import metrics
from triage.routing.tree import Route, RoutingTree
from triage.settings import CascadeSettings

NEGATIVE_OPERATORS = ("!=", "!~")


def routed_categories(tree: RoutingTree, names: Iterable[str]) -> frozenset[str]:
    """The categories a `category` matcher of the tree singles out: those `=`, `in` and `=~` accept,
    and those `!=` and `!~` refuse."""
    names = list(names)
    found: set[str] = set()

    def walk(route: Route) -> None:
        for matcher in route.matchers:
            if matcher.field != "category":
                continue
            negative = matcher.op in NEGATIVE_OPERATORS
            found.update(name for name in names if matcher.matches({"category": name}) != negative)
        for child in route.routes:
            walk(child)

    walk(tree.config.route)
    return frozenset(found)


@dataclass(frozen=True)
class AskRule:
    ask_below: float
    category_below: float
    routed: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: CascadeSettings, routed: frozenset[str]) -> AskRule:
        return cls(settings.ask_below, settings.category_below, routed)

    def reason(self, assessment: Assessment) -> str | None:
        """Why the LLM should be asked about this message, or None: the embedded answer stands."""
        triage = assessment.triage
        if triage.urgency in ("high", "urgent"):
            return "flagged"
        if triage.confidence < self.ask_below:
            return "unsure"
        if assessment.category_probability < self.category_below and (
            {triage.category, assessment.runner_up} & self.routed
        ):
            return "category"
        return None


class CascadeClassifier:
    def __init__(self, embedded: EmbeddedClassifier, llm: FallbackClassifier, rule: AskRule) -> None:
        self.embedded = embedded
        self.encoder = embedded.encoder  # for grouping by meaning (triage.pipeline.find_encoder)
        self.llm = llm
        self.budget = llm.budget
        self.rule = rule
        self.name = f"cascade:{embedded.name}+{llm.name}"

    def use_routes(self, tree: RoutingTree) -> None:
        """A reloaded routing file: the categories it matches on from now on (one assignment: a
        message judged meanwhile sees the old rule or the new one, whole)."""
        routed = routed_categories(tree, self.embedded.category.classes)
        self.rule = AskRule(self.rule.ask_below, self.rule.category_below, routed)

    def classify(self, message: SupportMessage) -> Triage:
        assessment = self.embedded.assess(message)
        reason = self.rule.reason(assessment)
        metrics.CASCADE_DECISIONS.labels(reason or "no").inc()
        if reason is None:
            return assessment.triage
        answer = self.llm.ask(message)
        if answer is None:
            return assessment.triage.model_copy(update={"degraded": True})
        return answer
