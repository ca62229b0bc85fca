"""Group commit: one thread stores what all the pool's threads have triaged, many per transaction.

With 64 messages in flight, 64 threads each running their own INSERT transaction would queue on the
database's write lock (SQLite has one) and spend more CPU on transaction overhead than on the rows.
A pool thread hands its rows to `save_triaged` and waits; the writer takes everything waiting, up to
`max_batch`, and stores it with Store.save_triaged_many. Each caller gets its own answer: stored, a
duplicate, or the exception (StoreUnavailable for an outage, to be retried by the caller).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future

from triage.store.db import Store, StoreUnavailable, Triaged
from triage.store.tables import DeliveryRow, MessageRow, TriageRow

_Pending = tuple[Triaged, "Future[bool]"]


class BatchWriter:
    def __init__(self, store: Store, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # so that nothing is queued after the stop sentinel
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Store everything handed in before the call, then stop; later calls fail as an outage."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(None)
        thread.join()

    def save_triaged(
        self,
        message: MessageRow,
        result: TriageRow,
        deliveries: Iterable[DeliveryRow],
        identities: Sequence[str] = (),
    ) -> bool:
        """Same contract as Store.save_triaged: True if stored, False if the id was stored before."""
        future: Future[bool] = Future()
        with self._lock:
            if self._thread is None:
                raise StoreUnavailable("the store writer is stopped")
            self._queue.put((Triaged(message, result, list(deliveries), list(identities)), future))
        return future.result()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:  # the stop sentinel: write this batch, then end
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        try:
            stored = self.store.save_triaged_many([item for item, _ in batch])
        except Exception as error:
            if len(batch) > 1 and not isinstance(error, StoreUnavailable):
                for pending in batch:  # one bad row must not fail the others: each on its own
                    self._write([pending])
                return
            for _, future in batch:
                future.set_exception(error)
            return
        for (_, future), was_stored in zip(batch, stored, strict=True):
            future.set_result(was_stored)
