"""LLM first, embedded model when the LLM is unavailable: degraded results, never a lost message.

A circuit breaker stops an outage from costing every message a full round of timeouts: after
`failures` consecutive failures the LLM is skipped for `cooldown_s`, then one message tries it again.
"""

from __future__ import annotations

import logging
import threading
import time

from triage.classify.base import Classifier, LLMUnavailable
from triage.classify.budget import DailyBudget
from triage.message import SupportMessage, Triage
from triage.ops import metrics

log = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float) -> None:
        self.failures_to_open = failures
        self.cooldown_s = cooldown_s
        self._failures = 0
        self._open_until = 0.0
        self._trial_running = False
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """May this call go to the LLM? While open, no; after the cooldown, one trial call at a time."""
        with self._lock:
            if self._failures < self.failures_to_open:
                return True
            if time.monotonic() < self._open_until or self._trial_running:
                return False
            self._trial_running = True
            return True

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial_running = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._failures >= self.failures_to_open:
                self._open_until = time.monotonic() + self.cooldown_s

    @property
    def is_open(self) -> bool:
        return self._failures >= self.failures_to_open


class FallbackClassifier:
    def __init__(
        self,
        primary: Classifier,
        fallback: Classifier,
        breaker: CircuitBreaker,
        budget: DailyBudget | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.breaker = breaker
        self.budget = budget
        self.name = primary.name

    def classify(self, message: SupportMessage) -> Triage:
        result = self.ask(message)
        if result is not None:
            return result
        return self.fallback.classify(message).model_copy(update={"degraded": True})

    def ask(self, message: SupportMessage) -> Triage | None:
        """The LLM's answer, or None (counted by reason) when the budget, the breaker or an outage
        stops it: the caller then answers from its own model, degraded."""
        if self.budget is not None and not self.budget.allow():
            reason = "budget"
        elif self.breaker.allow():
            try:
                result = self.primary.classify(message)
            except LLMUnavailable as error:
                self.breaker.failure()
                reason = "error"
                log.warning(
                    "LLM unavailable, using %s: %s",
                    self.fallback.name,
                    error,
                    extra={"message_id": message.id},
                )
            else:
                self.breaker.success()
                if self.budget is not None:
                    self.budget.spend(result.cost_usd)
                return result
        else:
            reason = "circuit_open"
        metrics.CLASSIFIER_FALLBACKS.labels(reason).inc()
        return None
