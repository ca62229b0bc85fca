"""Escalation: an alert sent by a route with `escalate: {after, to}` and not taken within `after` of
its delivery (the delivery's sent_at) is sent to `to`, once.

A scanner thread in every worker looks, every second, for sent alerts whose escalation is due and not
decided yet (escalate_after_s still set), and decides each in one transaction: taken (an
acknowledgement exists) → `cancelled`; otherwise the escalation's outbox delivery is inserted, unique
per (message, receiver); and the decision is stored (`escalations`, keyed by the alert's delivery) and
the alert's escalate_after_s cleared. Both rows commit together or not at all, so a
kill -9 between them cannot happen, and two workers deciding the same alert make one outbox row: the
second's INSERT finds the first's and does nothing. The outbox then sends it with its usual guarantees
(a lane's claim and lease, the lookup of a post in doubt). An incident's escalation names its first
case's message, so an incident escalates once whichever of its alerts is due first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from triage.oncall.acks import target_of
from triage.oncall.slack_blocks import not_taken_for
from triage.ops import metrics
from triage.store import Store, StoreUnavailable
from triage.store.tables import AcknowledgementRow, DeliveryRow, EscalationRow, IncidentRow

log = logging.getLogger(__name__)
SCAN_EVERY_S = 1.0
SCAN_BATCH = 200


class Escalator:
    def __init__(self, store: Store, wake: Callable[[], None], every_s: float = SCAN_EVERY_S) -> None:
        self.store = store
        self.wake = wake  # the outbox: an escalation was stored
        self.every_s = every_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="escalations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.wait(self.every_s):
            try:
                if self.scan_once():
                    self.wake()
            except StoreUnavailable as error:
                log.warning("escalations: %s; trying again", error)

    def scan_once(self, now: datetime | None = None) -> int:
        """Decide every due escalation; returns how many were sent to the outbox."""
        now = now or datetime.now(UTC)
        query = (
            select(DeliveryRow)
            .where((DeliveryRow.status == "sent") & DeliveryRow.escalate_after_s.is_not(None))
            .order_by(DeliveryRow.sent_at)
            .limit(SCAN_BATCH)
        )
        with self.store.session(read_only=True) as session:
            waiting = list(session.scalars(query))
        sent = 0
        for alert in waiting:
            if _aware(alert.sent_at) + timedelta(seconds=alert.escalate_after_s or 0) <= now:
                sent += self._decide(alert, now)
        return sent

    def _decide(self, alert: DeliveryRow, now: datetime) -> int:
        target = target_of(alert)
        with self.store.session() as session:
            insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
            taken = session.get(AcknowledgementRow, target.subject)
            status, delivery_id = "cancelled", None
            if taken is None:
                escalation = self._escalation(session, alert, target.subject, now)
                delivery_id = session.scalar(
                    insert(DeliveryRow)
                    .values(**escalation)
                    .on_conflict_do_nothing()
                    .returning(DeliveryRow.id)
                )
                status = "sent" if delivery_id is not None else "present"
            # decided: the alert leaves the scan's index (status, escalate_after_s)
            session.execute(
                update(DeliveryRow).where(DeliveryRow.id == alert.id).values(escalate_after_s=None)
            )
            decided = session.scalar(
                insert(EscalationRow)
                .values(
                    source_delivery_id=alert.id,
                    subject=target.subject,
                    receiver=alert.escalate_to,
                    status=status,
                    delivery_id=delivery_id,
                    decided_at=now,
                )
                .on_conflict_do_nothing()
                .returning(EscalationRow.source_delivery_id)
            )
        if decided is None or status != "sent":
            return 0
        metrics.ESCALATED.labels(alert.escalate_to or "").inc()
        log.info(
            "%s not taken for %s: escalated to %s",
            target.subject,
            not_taken_for(alert.escalate_after_s),
            alert.escalate_to,
            extra={"message_id": alert.message_id},
        )
        return 1

    @staticmethod
    def _escalation(session: Session, alert: DeliveryRow, subject: str, now: datetime) -> dict[str, Any]:
        """The escalation's outbox row: the alert's case (an incident's: its first case) with what was
        not taken, for how long, where."""
        payload = {key: value for key, value in alert.payload.items() if key != "group"}
        message_id, incident = alert.message_id, None
        if alert.incident_id is not None:
            incident = session.get(IncidentRow, alert.incident_id)
            if incident is not None and incident.opener_id is not None:
                opener = session.get(DeliveryRow, incident.opener_id)
                if opener is not None:
                    message_id = opener.message_id
                    payload = {key: value for key, value in opener.payload.items() if key != "group"}
        payload["escalated"] = {
            "subject": subject,
            "after_s": alert.escalate_after_s,
            "from": alert.receiver,
            "sent_at": _aware(alert.sent_at).isoformat(timespec="seconds"),
            "incident": (
                {
                    "id": incident.id,
                    "cases": incident.case_count,
                    "key": (alert.payload.get("group") or {}).get("key"),
                }
                if incident is not None
                else None
            ),
        }
        return {
            "message_id": message_id,
            "receiver": alert.escalate_to,
            "conversation_id": payload.get("conversation_id"),
            "status": "pending",
            "payload": payload,
            "attempts": 0,
            "created_at": now,
            "priority": alert.priority,
        }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
