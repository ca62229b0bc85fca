"""What the running worker watches, so that its log, /readyz and /metrics say how it is doing.

- BrokerWatch: does a bootstrap server accept connections? One log line per change ("broker
  unreachable at ...", "broker back at ..."), and the reason /readyz gives while it is down.
- OutboxWatch: per receiver, the deliveries that are due and not sent, and how long the oldest has
  waited, read from the store: the `triage_outbox_pending` and
  `triage_outbox_oldest_pending_age_seconds` gauges, and the "degraded: ..." lines of /readyz.

HealthWatch runs both in one daemon thread every couple of seconds, so a slow check never holds up
the run loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from triage.ops import metrics
from triage.ops.http import broker_check
from triage.routing import RESULTS_RECEIVER
from triage.store import Backlog, Store, StoreUnavailable

log = logging.getLogger(__name__)
DEGRADED_AFTER_S = 60.0  # an alert normally goes out within seconds; a minute means it is stuck


class BrokerWatch:
    def __init__(self, bootstrap_servers: str) -> None:
        self.servers = bootstrap_servers
        self._check = broker_check(bootstrap_servers)
        self.problem: str | None = None  # why the broker is down; None while it is reachable
        self._down_since = 0.0
        self._lock = threading.Lock()  # the run loop checks too when a fetch fails: one line, not two

    def check(self) -> str | None:
        """Check now; log a change of state; return the problem (None: reachable)."""
        with self._lock:
            problem = self._check()
            if problem and not self.problem:
                self._down_since = time.monotonic()
                log.warning("%s: consuming waits until it is back; nothing is lost", problem)
            elif self.problem and not problem:
                log.info("broker back at %s after %.0fs", self.servers, time.monotonic() - self._down_since)
            self.problem = problem
            return problem


class OutboxWatch:
    def __init__(self, store: Store, receivers: Callable[[], Iterable[str]] = tuple) -> None:
        self.store = store
        self.receivers = receivers  # the routing tree's, so that each has its gauges from the start
        self.backlog: list[Backlog] = []
        self._seen: set[str] = set()

    def refresh(self) -> None:
        """Read the backlog and set the gauges (to 0 for a receiver with nothing waiting)."""
        try:
            backlog = self.store.backlog()
        except StoreUnavailable:
            return  # the store check of /readyz says so; the gauges keep their last values
        now = datetime.now(UTC)
        waiting = {item.receiver: item for item in backlog}
        self._seen |= set(self.receivers()) | set(waiting)
        for receiver in self._seen:
            item = waiting.get(receiver)
            metrics.OUTBOX_PENDING.labels(receiver).set(item.waiting if item else 0)
            age = max(0.0, (now - item.oldest_due).total_seconds()) if item else 0.0
            metrics.OUTBOX_OLDEST_AGE.labels(receiver).set(age)
        self.backlog = backlog

    def degraded(self) -> list[str]:
        """One line per receiver whose oldest due delivery waits for more than DEGRADED_AFTER_S."""
        now = datetime.now(UTC)
        lines = []
        for item in self.backlog:
            age_s = (now - item.oldest_due).total_seconds()
            if age_s >= DEGRADED_AFTER_S:
                name = "the results topic" if item.receiver == RESULTS_RECEIVER else item.receiver
                plural = "y" if item.waiting == 1 else "ies"
                lines.append(
                    f"degraded: {item.waiting} deliver{plural} to {name} waiting for {_duration(age_s)}"
                )
        return lines


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


class HealthWatch:
    """The watches in one daemon thread, every `interval_s`."""

    def __init__(self, broker: BrokerWatch, outbox: OutboxWatch, interval_s: float = 2.0) -> None:
        self.broker = broker
        self.outbox = outbox
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.broker.check()
            self.outbox.refresh()
            self._stop.wait(self.interval_s)
