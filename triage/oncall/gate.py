"""Whether a claimed delivery may be sent: silences and inhibit rules, checked when a lane claims it.

The check is made at the claim, not when the case is routed: a silence added (or an incident opened)
while a delivery waits in the outbox (group_wait, quiet hours, a Slack 429) still applies, and a silence
that ended lets the deliveries claimed after its end go. A held delivery is finished as `silenced`
(detail: `silence <id>`) or `inhibited` (detail: the incident and the rule) and never sent; nothing is
replayed later (as Alertmanager). The results topic is internal and never held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from triage.oncall import silences
from triage.ops import metrics
from triage.routing import RESULTS_RECEIVER
from triage.routing.cases import stored_case
from triage.routing.oncall import InhibitRule
from triage.store import Store
from triage.store.tables import DeliveryRow, IncidentRow, MessageRow, TriageRow


@dataclass(frozen=True)
class Held:
    status: str  # silenced | inhibited
    detail: str


@dataclass
class Gate:
    store: Store
    rules: Sequence[InhibitRule] = field(default_factory=list)  # the routing file's inhibit_rules

    def held(self, rows: Sequence[DeliveryRow]) -> dict[int, Held]:
        """The claimed deliveries that must not be sent, by delivery id."""
        rows = [row for row in rows if row.receiver != RESULTS_RECEIVER]
        if not rows:
            return {}
        active = silences.active(self.store)
        sources = self.open_incidents() if self.rules else []
        if not active and not sources:
            return {}
        cases = self.cases({row.message_id for row in rows})
        held: dict[int, Held] = {}
        for row in rows:
            case = cases.get(row.message_id)
            if case is None:
                continue
            if found := inhibiting(self.rules, row.receiver, row.message_id, case, sources):
                held[row.id] = found
            if silence := silences.matching(active, case):
                held[row.id] = Held("silenced", f"silence {silence}")
        return held

    def hold(self, row: DeliveryRow, held: Held) -> None:
        """Finish a claimed delivery as held. An incident whose alert it was is closed with it, in one
        transaction: later cases open a new incident (and alert) rather than join one never shown."""
        now = datetime.now(UTC)
        with self.store.session() as session:
            session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == row.id)
                .values(status=held.status, detail=held.detail, sent_at=now)
            )
            session.execute(update(IncidentRow).where(IncidentRow.opener_id == row.id).values(closes_at=now))
        metrics.DELIVERIES.labels(row.receiver, held.status).inc()

    def open_incidents(self) -> list[tuple[IncidentRow, str, dict[str, Any]]]:
        """Open incidents with their first case's message id and fields."""
        now = datetime.now(UTC)
        with self.store.session(read_only=True) as session:
            found = session.execute(
                select(IncidentRow, DeliveryRow.message_id)
                .join(DeliveryRow, DeliveryRow.incident_id == IncidentRow.id)
                .where((IncidentRow.closes_at > now) & (DeliveryRow.incident_seq == 1))
            ).all()
        cases = self.cases({message_id for _, message_id in found})
        return [(incident, mid, cases[mid]) for incident, mid in found if mid in cases]

    def cases(self, message_ids: set[str]) -> dict[str, dict[str, Any]]:
        """The matcher fields of stored messages (as the routing tree saw them)."""
        with self.store.session(read_only=True) as session:
            rows = session.execute(
                select(MessageRow.id, MessageRow.parsed, TriageRow)
                .join(TriageRow)
                .where(MessageRow.id.in_(list(message_ids)))
            ).all()
        return {message_id: stored_case(parsed, result) for message_id, parsed, result in rows}


def inhibiting(
    rules: Sequence[InhibitRule],
    receiver: str,
    message_id: str | None,
    case: dict[str, Any],
    sources: Sequence[tuple[IncidentRow, str, dict[str, Any]]],
) -> Held | None:
    """A per-case delivery to another receiver than an open incident's, muted by a rule."""
    for incident, first_message, source in sources:
        if incident.receiver == receiver or first_message == message_id:
            continue  # an incident does not hold back its own cases
        for rule in rules:
            if rule.inhibits(source, case):
                return Held("inhibited", f"incident {incident.id} ({incident.receiver}): {rule.describe()}")
    return None
