"""Group commit for the dedup memory: one thread does the store writes of every request in flight.

A request thread hands in its claim and waits; marks (produced, released) are handed in without
waiting. The thread takes everything waiting and applies it in one transaction, marks before claims,
so a webhook sent again right after its 2xx finds its id produced. A few hundred webhooks a second
then cost a few transactions a second, not two each, and SQLite's single writer is never queued for.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from triage.store import StoreUnavailable
from triage.store.ingested import Claim, IngestedStore

log = logging.getLogger(__name__)
MAX_BATCH = 500


@dataclass
class _Op:
    kind: str  # "claim", "produced" or "released"
    message_id: str
    answer: Future[Claim] | None = field(default=None)


class Deduplicator:
    def __init__(self, ingested: IngestedStore) -> None:
        self.ingested = ingested
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ingest-dedup", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Apply everything handed in before the call, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def claim(self, message_id: str) -> Claim:
        """See IngestedStore.apply; StoreUnavailable when the store cannot be reached."""
        answer: Future[Claim] = Future()
        self._queue.put(_Op("claim", message_id, answer))
        return answer.result()

    def produced(self, message_id: str) -> None:
        self._queue.put(_Op("produced", message_id))

    def released(self, message_id: str) -> None:
        self._queue.put(_Op("released", message_id))

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            stopping = False
            while len(batch) < MAX_BATCH:
                try:
                    op = self._queue.get_nowait()
                except queue.Empty:
                    break
                if op is None:
                    stopping = True
                    break
                batch.append(op)
            self._apply(batch)
            if stopping:
                return

    def _apply(self, batch: list[_Op]) -> None:
        ids = {kind: [op.message_id for op in batch if op.kind == kind] for kind in ("produced", "released")}
        claims = [op for op in batch if op.kind == "claim"]
        try:
            found = self.ingested.apply(ids["produced"], ids["released"], [op.message_id for op in claims])
        except Exception as error:  # StoreUnavailable (an outage) or a bug: the requests answer, not hang
            marks = len(ids["produced"]) + len(ids["released"])
            log.warning(
                "dedup store write failed (%d claims, %d marks; the marks' leases run out instead): %s",
                len(claims),
                marks,
                error,
                exc_info=not isinstance(error, StoreUnavailable),
            )
            for op in claims:
                op.answer.set_exception(error)
            return
        seen: set[str] = set()
        for op in claims:  # the same id twice in a batch: the first claims it, the second is busy
            result = found[op.message_id]
            op.answer.set_result("busy" if op.message_id in seen and result == "claimed" else result)
            seen.add(op.message_id)
