"""The outbox sender: one lane (a thread) per receiver, or per Slack channel, sends stored deliveries.

A delivery is stored in the same transaction as its triage result, so a crash between storing and
sending loses nothing. A lane claims deliveries (see Store.claim_deliveries), the most urgent first,
sends them, and marks each sent, skipped, failed (refused for good: a helpdesk ticket that is gone or
forbidden), or hands it back to the queue (a transient failure). Lanes are independent, so a
Slack channel that is rate-limited never holds back the results topic or another channel; receivers
that post to the same channel share one lane, as they share the channel's rate limit.

A grouped delivery is first made a member of its incident (triage/store/incidents.py); only what the
incident needs sent now (its alert when due, an escalation) reaches the sender. When a lane has no
delivery to send, it makes one due incident update.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from triage.oncall.gate import Gate
from triage.ops import metrics
from triage.receivers.base import DeliveryFailed, Sender, SkippingSender
from triage.store import DeliveryUpdate, Store, StoreUnavailable
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow

log = logging.getLogger(__name__)
MAX_RETRY_WAIT_S = 300.0  # a failing delivery is tried again after 2, 4, 8 ... seconds, at most this


class Outbox:
    def __init__(
        self,
        store: Store,
        senders: dict[str, Sender],
        claimer: str,
        lease: timedelta,
        idle_wait_s: float = 0.2,
        gather_s: float = 0.05,
        gate: Gate | None = None,
    ) -> None:
        self.store = store
        self.gate = gate or Gate(store)  # silences and inhibit rules, checked at the claim
        self.incidents = Incidents(store)
        self.senders = senders
        self.claimer = claimer
        self.lease = lease
        self.idle_wait_s = idle_wait_s
        self.gather_s = gather_s
        self._lanes: dict[str, threading.Thread] = {}
        self._wake = threading.Condition()
        self._stopping = threading.Event()

    def start(self) -> None:
        for receiver in set(self.senders) | set(self.store.unfinished_receivers()):
            self._start_lane(self._lane_of(receiver))

    def use(self, senders: dict[str, Sender]) -> None:
        """New senders after a routing reload; lanes for new receivers (or channels) start at once."""
        self.senders = senders
        if self._lanes:
            for receiver in senders:
                self._start_lane(self._lane_of(receiver))

    def _lane_of(self, receiver: str) -> str:
        """Receivers that post to one Slack channel share its lane (`slack:#channel`): the channel's
        rate limit is theirs together, and the most urgent of their alerts goes first."""
        sender = self.senders.get(receiver)
        return getattr(sender, "lane", None) or receiver

    def _receivers(self, lane: str) -> list[str]:
        return [receiver for receiver in self.senders if self._lane_of(receiver) == lane] or [lane]

    def wake(self) -> None:
        """New deliveries were stored: lanes waiting for work look again now."""
        with self._wake:
            self._wake.notify_all()

    def flush(self, deadline: float) -> None:
        """Wait (until the time.monotonic() deadline) for the lanes to send every due delivery."""
        if not self._lanes:
            return
        self.wake()
        while time.monotonic() < deadline:
            try:
                if self.store.count_due() == 0:
                    return
            except StoreUnavailable:
                pass
            self._stopping.wait(0.1)
        log.warning("outbox not empty at the end of the grace period: the next start sends the rest")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Let each lane finish the batch at hand, then stop."""
        self._stopping.set()
        self.wake()
        for lane in self._lanes.values():
            lane.join(timeout=timeout_s)
        self._lanes.clear()
        self._stopping.clear()

    def _sender(self, receiver: str) -> Sender:
        return self.senders.get(receiver) or SkippingSender(
            f"receiver {receiver!r} is no longer in the routing file"
        )

    def _batch_size(self, lane: str) -> int:
        return min(self._sender(receiver).batch_size for receiver in self._receivers(lane))

    def send_once(self, lane: str) -> int:
        """Claim and send one batch for a lane; returns how many deliveries it handled."""
        rows = self.store.claim_deliveries(
            self._receivers(lane), self.claimer, self._batch_size(lane), self.lease
        )
        by_receiver: dict[str, list[DeliveryRow]] = {}
        held = self.gate.held(rows)
        for row in rows:
            if row.id in held:
                self.gate.hold(row, held[row.id])
                continue
            assignment = self.incidents.assign(row) if self._joins_incident(row) else "send"
            if assignment == "grouped":  # counted by its incident's alert
                metrics.DELIVERIES.labels(row.receiver, "grouped").inc()
            if assignment != "send":
                continue
            by_receiver.setdefault(row.receiver, []).append(row)
        for receiver, batch in by_receiver.items():
            sender = self._sender(receiver)
            try:
                outcomes = sender.send_batch(batch)
            except Exception as error:  # a sender bug must not kill the lane: the batch is retried
                log.exception("sender for %s failed", receiver)
                outcomes = [DeliveryFailed(f"{type(error).__name__}: {error}")] * len(batch)
            self.store.finish_deliveries(self._updates(receiver, batch, outcomes))
        return len(rows)

    def _incident_work(self, lane: str) -> int:
        """Incident updates, for lanes whose senders make them (the others have none)."""
        if not any(hasattr(self._sender(receiver), "update_incident") for receiver in self._receivers(lane)):
            return 0
        return self.update_incident_once(lane)

    def _joins_incident(self, row: DeliveryRow) -> bool:
        """A grouped delivery not yet in an incident, whose sender groups (a skipping one does not)."""
        return (
            bool(row.group_key)
            and row.incident_id is None
            and getattr(self._sender(row.receiver), "groups", False)
        )

    def update_incident_once(self, lane: str) -> int:
        """Make one due incident update for the lane's receivers (1), or find none (0)."""
        incident = self.incidents.claim_update(self._receivers(lane), self.claimer, self.lease)
        if incident is None:
            return 0
        sender = self._sender(incident.receiver)
        try:
            result = sender.update_incident(incident)  # type: ignore[attr-defined]
        except Exception as error:
            log.exception("incident update for %s failed", incident.receiver)
            result = DeliveryFailed(f"{type(error).__name__}: {error}")
        if isinstance(result, DeliveryFailed):
            wait = result.retry_after_s or min(MAX_RETRY_WAIT_S, 2.0**incident.update_attempts)
            self.incidents.update_failed(incident.id, datetime.now(UTC) + timedelta(seconds=wait))
            log.warning(
                "incident %s update for %s failed, will retry: %s", incident.id, incident.receiver, result
            )
        else:
            self.incidents.update_done(incident.id, result)
        return 1

    def _updates(
        self, receiver: str, rows: Sequence[DeliveryRow], outcomes: Sequence
    ) -> list[DeliveryUpdate]:
        updates = []
        failed: list[tuple[DeliveryRow, DeliveryFailed]] = []
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, DeliveryFailed):
                wait = outcome.retry_after_s or min(MAX_RETRY_WAIT_S, 2.0**row.attempts)
                retry_at = datetime.now(UTC) + timedelta(seconds=wait)
                updates.append(DeliveryUpdate(row.id, "retry", str(outcome), retry_at))
                failed.append((row, outcome))
                metrics.DELIVERIES.labels(receiver, "retry").inc()
            else:
                updates.append(DeliveryUpdate(row.id, outcome.status, outcome.detail))
                metrics.DELIVERIES.labels(receiver, outcome.status).inc()
        if failed:  # one line per batch: a results-topic batch of 500 failing is one problem, not 500
            row, outcome = failed[0]
            more = f" (and {len(failed) - 1} more in this batch)" if len(failed) > 1 else ""
            log.warning(
                "delivery to %s failed, will retry%s: %s",
                receiver,
                more,
                outcome,
                extra={"message_id": row.message_id, "receiver": receiver},
            )
        return updates

    def _start_lane(self, lane: str) -> None:
        if lane in self._lanes:
            return
        thread = threading.Thread(target=self._run_lane, args=(lane,), name=f"outbox-{lane}", daemon=True)
        self._lanes[lane] = thread
        thread.start()

    def _run_lane(self, lane: str) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                if backoff:  # the store failed mid-batch: what this lane had claimed is in doubt
                    for receiver in self._receivers(lane):
                        self.store.release_claims(receiver, self.claimer)
                handled = self.send_once(lane) or self._incident_work(lane)
                backoff = 0.0
            except StoreUnavailable as error:
                backoff = min(30.0, max(1.0, backoff * 2))
                log.warning("outbox lane %s: %s; retrying in %.0fs", lane, error, backoff)
                self._stopping.wait(backoff)
                continue
            if not handled:
                with self._wake:
                    self._wake.wait(self.idle_wait_s)
            elif handled < self._batch_size(lane):
                # A part batch: let more deliveries gather before the next claim, so that a steady
                # stream costs one claim per gather_s, not one per message.
                self._stopping.wait(self.gather_s)
