"""The LLM's daily spending cap (TRIAGE_LLM__DAILY_BUDGET_USD), shared by every worker of one store.

Today's spend is the sum of the stored results' `cost_usd` since 00:00 UTC (so it survives a restart
and counts every worker), read again every READ_S seconds, and never less than what this process has
spent today itself (results wait in the batch writer before they are stored). Past the cap the caller
answers with the embedded model until the next UTC day; the crossing is logged once a day.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from triage.ops import metrics
from triage.store import Store
from triage.store.tables import TriageRow

log = logging.getLogger(__name__)
READ_S = 5.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def stored_spend(store: Store, day: date) -> float:
    """The cost of the results stored on a UTC day."""
    start = midnight(day)
    query = select(func.coalesce(func.sum(TriageRow.cost_usd), 0.0)).where(
        TriageRow.triaged_at >= start, TriageRow.triaged_at < start + timedelta(days=1)
    )
    with store.session(read_only=True) as session:
        return float(session.scalar(query) or 0.0)


class DailyBudget:
    def __init__(
        self,
        cap_usd: float,
        store: Store | None = None,
        now: Callable[[], datetime] = utc_now,
        read_s: float = READ_S,
    ) -> None:
        self.cap_usd = cap_usd
        self.store = store
        self.now = now
        self.read_s = read_s
        self._lock = threading.Lock()
        self._day: date | None = None
        self._stored = 0.0  # all workers, as last read from the store
        self._own = 0.0  # this process, today
        self._since_read = 0.0  # this process, since the last read
        self._read_at: float | None = None
        self._said: date | None = None  # the day the crossing was logged
        metrics.LLM_DAILY_BUDGET.set(cap_usd)

    def allow(self) -> bool:
        """May the LLM be asked now? False past today's cap (logged once a day)."""
        with self._lock:
            spent = self._spent()
            if spent < self.cap_usd:
                return True
            if self._said != self._day:
                self._said = self._day
                log.warning(
                    "LLM daily budget reached: $%.4f spent of $%.2f; the embedded model answers until "
                    "00:00 UTC",
                    spent,
                    self.cap_usd,
                )
            return False

    def spend(self, usd: float) -> None:
        with self._lock:
            self._spent()  # a new day starts from zero before this is added
            self._own += usd
            self._since_read += usd
            metrics.LLM_SPEND_TODAY.set(self._total())

    def notes(self) -> list[str]:
        """For /readyz: a line while the cap holds the LLM back."""
        with self._lock:
            spent = self._spent()
        if spent < self.cap_usd:
            return []
        return [
            f"degraded: LLM daily budget ${self.cap_usd:.2f} reached (${spent:.4f} spent today); "
            "the embedded model answers until 00:00 UTC"
        ]

    def spent_today(self) -> float:
        with self._lock:
            return self._spent()

    def _spent(self) -> float:
        """Today's spend (the lock is held)."""
        today = self.now().astimezone(UTC).date()
        if today != self._day:
            self._day, self._stored, self._own, self._since_read, self._read_at = today, 0.0, 0.0, 0.0, None
        if self.store is not None and (
            self._read_at is None or time.monotonic() - self._read_at >= self.read_s
        ):
            self._stored = stored_spend(self.store, today)
            self._since_read = 0.0
            self._read_at = time.monotonic()
        total = self._total()
        metrics.LLM_SPEND_TODAY.set(total)
        return total

    def _total(self) -> float:
        # the store has every worker's stored spend; this process's own may not be stored yet
        return max(self._stored + self._since_read, self._own)


def classifier_notes(classifier: object) -> list[str]:
    """/readyz detail from a classifier's daily budget, if it has one."""
    budget = getattr(classifier, "budget", None)
    return budget.notes() if isinstance(budget, DailyBudget) else []
