"""The loop every helpdesk corrections reader runs (Zendesk's ticket events, the Gorgias, Kustomer and
Freshdesk ticket lists): in its own thread, every `poll_s`, read pages until there is nothing more;
a rate limit waits what the helpdesk asked; a failure is one warning per outage, not one per poll."""

from __future__ import annotations

import logging
import threading

from triage.helpdesks.base import HelpdeskBusy

log = logging.getLogger(__name__)


class RetryLater(HelpdeskBusy):
    """The helpdesk asked us to wait (429): that many seconds."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited for {seconds:.0f}s", retry_after_s=seconds)
        self.seconds = seconds


class Poller:
    """A subclass reads one page (`read_page`) and names what it reads and which errors are passing."""

    reading = ""  # for the thread's name and the log: "Zendesk's ticket events"
    transient: tuple[type[Exception], ...] = ()  # failures logged once and retried at the next poll

    def __init__(self, poll_s: float) -> None:
        self.poll_s = poll_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def read_page(self) -> bool:
        """Read one page and store what it found; True when there is nothing more to read now."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"poll {self.reading}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.is_set():
            wait = self.poll_s
            try:
                while not self._stopping.is_set() and not self.read_page():
                    pass  # more pages: read on
                if self._failing:
                    log.info("reading %s works again", self.reading)
                self._failing = False
            except HelpdeskBusy as busy:
                wait = busy.retry_after_s or self.poll_s
            except self.transient as error:
                if not self._failing:  # once per outage, not every poll
                    log.warning("reading %s failed, retrying: %s", self.reading, error)
                self._failing = True
            self._stopping.wait(wait)
