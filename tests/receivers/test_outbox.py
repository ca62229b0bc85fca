import time
from collections.abc import Sequence
from datetime import timedelta

from tests.receivers.conftest import store_case
from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.outbox import Outbox
from triage.store.tables import DeliveryRow


class CountingReceiver:
    """A receiver that delivers by remembering: which deliveries came in which batch."""

    batch_size = 100

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        self.batches.append([d.message_id for d in deliveries])
        return [Outcome("sent") for _ in deliveries]


def test_a_steady_trickle_is_sent_in_gathered_batches_in_order(store):
    receiver = CountingReceiver()
    outbox = Outbox(store, {"log": receiver}, "test", timedelta(seconds=60), gather_s=0.1)
    outbox.start()
    try:
        stored = []
        for n in range(30):  # one delivery every 10 ms, as a busy worker stores them
            stored.append(store_case(store, "log", conversation=f"c{n}").message_id)
            outbox.wake()
            time.sleep(0.01)
        deadline = time.monotonic() + 10
        while store.count_due() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        outbox.stop()
    assert [m for batch in receiver.batches for m in batch] == stored  # each once, in storage order
    assert len(receiver.batches) <= 10  # ~0.3 s of trickle in 0.1 s gathers, not one claim per delivery
