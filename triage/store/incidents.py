"""Incidents: the cases a grouped route sends to one receiver, gathered into one alert.

A grouped delivery (one with a `group_key`) is assigned to an incident by the outbox lane that claims
it, in one transaction with the delivery's new state, so every case is a member of exactly one incident
whatever crashes. Per receiver and group key, assignments are serialised (SQLite's write lock; a
transaction-scoped advisory lock on PostgreSQL), so two workers never open two incidents for one burst.

Modes (from the receiver's kind):
- alert (Slack): the first case's delivery becomes the incident's alert, held for group_wait; later
  cases are finished as `grouped` (listed in the alert's thread by updates at most once per
  group_interval), except one more urgent than anything posted so far, which is sent as an escalation.
- link (a helpdesk receiver with link_problem): every case is sent as usual; once two cases have tickets,
  one problem ticket is created and the members' tickets become its incidents.
- event (PagerDuty, a webhook): like alert, without group_wait; the sender is called again when the
  group may have gone idle (closes_at), to update the event with the cases that joined or, once idle,
  to resolve it (resolved_at).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from triage.message import URGENCY_ORDER, alert_priority
from triage.store.db import Store
from triage.store.tables import DeliveryRow, IncidentRow

Assignment = Literal["send", "grouped", "held"]
CENTROID_CASES = 5  # an incident's meaning: the mean embedding of its first cases
GATHER_AFTER_READ = timedelta(seconds=2)  # at least this (or group_wait if shorter) after a case is stored


def aware(moment: datetime) -> datetime:
    """SQLite gives times back without their offset; the store writes UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rank(urgency: str | None) -> int:
    return URGENCY_ORDER.index(urgency) if urgency in URGENCY_ORDER else -1


@dataclass(frozen=True)
class Member:
    """A case of an incident, as its alert shows it."""

    seq: int
    payload: dict[str, Any]


class Incidents:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- membership -----------------------------------------------------------------------------

    def assign(self, delivery: DeliveryRow) -> Assignment:
        """Make a claimed grouped delivery a member of its incident (opening one if none is open).

        Returns what the lane does with it now: "send" (an escalation, a helpdesk update, or a
        first case whose alert is due at once), "grouped" (finished: its incident's alert counts it),
        or "held" (the first case: its alert waits group_wait, back in the queue until then)."""
        now = datetime.now(UTC)
        group = delivery.payload["group"]
        with self.store.session() as session:
            self._lock(session, delivery.receiver, delivery.group_key or "")
            incident = self._open_incident(session, delivery, group, now)
            row = session.get(DeliveryRow, delivery.id)
            assert row is not None, f"claimed delivery {delivery.id} vanished"
            if incident is None:
                incident = self._open(session, row, group, now)
                assignment = self._first_case(row, incident, group, now)
            else:
                assignment = self._join(session, row, incident, group, now)
        delivery.incident_id, delivery.incident_seq = row.incident_id, row.incident_seq
        return assignment

    def _lock(self, session: Session, receiver: str, key: str) -> None:
        """Serialise assignments per group (SQLite's BEGIN IMMEDIATE already serialises every writer)."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{receiver} {key}"}
            )

    def _open_incident(
        self, session: Session, delivery: DeliveryRow, group: dict[str, Any], now: datetime
    ) -> IncidentRow | None:
        open_ = session.scalars(
            select(IncidentRow)
            .where(
                (IncidentRow.receiver == delivery.receiver)
                & (IncidentRow.group_key == delivery.group_key)
                & (IncidentRow.closes_at > now)
            )
            .order_by(IncidentRow.id)
        ).all()
        vector = group.get("vector")
        if vector is None:
            return open_[-1] if open_ else None
        return closest(open_, np.asarray(vector, dtype=np.float32), float(group["similarity"]))

    def _open(self, session: Session, row: DeliveryRow, group: dict[str, Any], now: datetime) -> IncidentRow:
        case = row.payload
        incident = IncidentRow(
            uid=uuid.uuid4().hex,
            receiver=row.receiver,
            group_key=row.group_key,
            mode=group["mode"],
            first_case_at=aware(row.created_at),
            last_case_at=aware(row.created_at),
            closes_at=now + timedelta(seconds=group["idle_s"]),
            case_count=1,
            ticket_count=1 if case.get("ticket_id") not in (None, "") else 0,
            top_urgency=case["urgency"],
            alerted_count=0,
            interval_s=group["interval_s"],
            opener_id=row.id if group["mode"] == "alert" else None,
            centroid=group.get("vector"),
            centroid_n=1 if group.get("vector") is not None else 0,
            update_attempts=0,
        )
        session.add(incident)
        session.flush()  # its id
        return incident

    def _first_case(
        self, row: DeliveryRow, incident: IncidentRow, group: dict[str, Any], now: datetime
    ) -> Assignment:
        row.incident_id, row.incident_seq = incident.id, 1
        # group_wait runs from the case's arrival at the broker (re-routed: from when it was stored), and
        # a case that waited in Kafka (a restart, a rebalance) still gathers the backlog read with it
        stored = aware(row.created_at)
        arrived = datetime.fromisoformat(group["arrived_at"]) if group.get("arrived_at") else stored
        wait = timedelta(seconds=group["wait_s"])
        due = max(arrived + wait, stored + min(wait, GATHER_AFTER_READ))
        if group["mode"] != "alert" or due <= now:
            return "send"
        # Back in the queue until group_wait has gathered the burst; not a failed try (attempts
        # counts tries that may have reached the service).
        row.status, row.claimed_by, row.claimed_at = "pending", None, None
        row.not_before, row.attempts = due, row.attempts - 1
        return "held"

    def _join(
        self, session: Session, row: DeliveryRow, incident: IncidentRow, group: dict[str, Any], now: datetime
    ) -> Assignment:
        case = row.payload
        incident.case_count += 1
        incident.ticket_count += 1 if case.get("ticket_id") not in (None, "") else 0
        incident.last_case_at = max(aware(incident.last_case_at), aware(row.created_at))
        incident.closes_at = now + timedelta(seconds=group["idle_s"])
        row.incident_id, row.incident_seq = incident.id, incident.case_count
        if group.get("vector") is not None and incident.centroid_n < CENTROID_CASES:
            incident.centroid = blend(incident.centroid, incident.centroid_n, group["vector"])
            incident.centroid_n += 1
        more_urgent = rank(case["urgency"]) > rank(incident.top_urgency)
        if more_urgent:
            incident.top_urgency = case["urgency"]
        if incident.mode == "link":
            if (
                incident.ticket_count >= 2
                and incident.problem_ticket_id is None
                and incident.next_update_at is None
            ):
                incident.next_update_at = now
            return "send"
        if incident.alerted_urgency is not None and rank(case["urgency"]) > rank(incident.alerted_urgency):
            incident.alerted_urgency = case["urgency"]  # one escalation per level
            return "send"
        if more_urgent and incident.opener_id is not None and incident.alerted_urgency is None:
            session.execute(  # the alert not posted yet goes out at the group's new urgency
                update(DeliveryRow)
                .where(DeliveryRow.id == incident.opener_id)
                .values(priority=alert_priority(case["urgency"]))
            )
        if incident.slack_ts is not None and incident.next_update_at is None:
            earliest = aware(incident.updated_at or now) + timedelta(seconds=incident.interval_s)
            incident.next_update_at = max(now, earliest)
        row.status, row.sent_at, row.detail = "grouped", now, f"incident {incident.id}"
        return "grouped"

    # --- reading --------------------------------------------------------------------------------

    def get(self, incident_id: int) -> IncidentRow | None:
        with self.store.session(read_only=True) as session:
            return session.get(IncidentRow, incident_id)

    def members(self, incident_id: int) -> list[Member]:
        with self.store.session(read_only=True) as session:
            rows = session.execute(
                select(DeliveryRow.incident_seq, DeliveryRow.payload)
                .where(DeliveryRow.incident_id == incident_id)
                .order_by(DeliveryRow.incident_seq)
            )
            return [Member(seq or 0, payload) for seq, payload in rows]

    # --- the alert and its updates --------------------------------------------------------------

    @contextmanager
    def _locked(self, incident_id: int) -> Iterator[IncidentRow]:
        """The incident in a transaction that holds its group's lock (no case joins meanwhile)."""
        with self.store.session() as session:
            incident = session.get(IncidentRow, incident_id)
            assert incident is not None, f"incident {incident_id} is gone"
            self._lock(session, incident.receiver, incident.group_key)
            session.refresh(incident)
            yield incident

    def begin_alert(self, incident_id: int) -> IncidentRow:
        """The incident's first alert is being posted: from now on a more urgent case is an escalation."""
        with self._locked(incident_id) as incident:
            incident.alerted_urgency = incident.top_urgency
            return incident

    def alert_posted(self, incident_id: int, channel: str, ts: str, counted: int) -> None:
        """Record the posted alert; an update follows after group_interval if cases joined meanwhile."""
        with self._locked(incident_id) as incident:
            incident.slack_channel, incident.slack_ts = channel, ts
            self._updated(incident, counted, datetime.now(UTC))

    def event_sent(self, incident_id: int, counted: int) -> None:
        """Record an incident's first event (event mode); it is looked at again when it may be idle."""
        with self._locked(incident_id) as incident:
            self._updated(incident, counted, datetime.now(UTC))

    def claim_update(self, receivers: Sequence[str], claimer: str, lease: timedelta) -> IncidentRow | None:
        """Take one incident whose update is due (or whose updater died), for this claimer."""
        now = datetime.now(UTC)
        with self.store.session() as session:
            query = (
                select(IncidentRow)
                .where(
                    IncidentRow.receiver.in_(list(receivers))
                    & (IncidentRow.next_update_at <= now)
                    & (
                        IncidentRow.update_claimed_by.is_(None)
                        | (IncidentRow.update_claimed_at < now - lease)
                    )
                )
                .order_by(IncidentRow.next_update_at)
                .limit(1)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            incident = session.scalars(query).first()
            if incident is None:
                return None
            incident.update_claimed_by, incident.update_claimed_at = claimer, now
            incident.update_attempts += 1
            return incident

    def update_done(self, incident_id: int, counted: int) -> None:
        with self._locked(incident_id) as incident:
            self._updated(incident, counted, datetime.now(UTC))
            incident.update_claimed_by = incident.update_claimed_at = None
            incident.update_attempts = 0

    def update_failed(self, incident_id: int, retry_at: datetime) -> None:
        """Try again at `retry_at`; the attempts stay counted, so the next try looks for a post first."""
        with self.store.session() as session:
            incident = session.get(IncidentRow, incident_id)
            assert incident is not None
            incident.update_claimed_by = incident.update_claimed_at = None
            incident.next_update_at = retry_at

    def resolved(self, incident_id: int) -> None:
        """The incident's event was resolved (it went idle): no more updates."""
        with self.store.session() as session:
            incident = session.get(IncidentRow, incident_id)
            assert incident is not None
            incident.resolved_at = datetime.now(UTC)

    def problem_created(self, incident_id: int, ticket_id: str) -> None:
        with self.store.session() as session:
            incident = session.get(IncidentRow, incident_id)
            assert incident is not None
            incident.problem_ticket_id = ticket_id

    @staticmethod
    def _updated(incident: IncidentRow, counted: int, now: datetime) -> None:
        incident.alerted_count, incident.updated_at = counted, now
        if incident.mode == "event":  # looked at again when it may have gone idle, until resolved
            incident.next_update_at = None if incident.resolved_at else aware(incident.closes_at)
            return
        later = incident.mode == "alert" and incident.case_count > counted
        incident.next_update_at = now + timedelta(seconds=incident.interval_s) if later else None


def closest(incidents: Sequence[IncidentRow], vector: np.ndarray, threshold: float) -> IncidentRow | None:
    """The open incident whose first cases the vector is most similar to, if at least `threshold`."""
    best, best_similarity = None, threshold
    for incident in incidents:
        if incident.centroid is None:
            continue
        similarity = float(np.asarray(incident.centroid, dtype=np.float32) @ vector)
        if similarity >= best_similarity:
            best, best_similarity = incident, similarity
    return best


def blend(centroid: list[float] | None, n: int, vector: list[float]) -> list[float]:
    """The normalised mean of n vectors (the centroid) and one more."""
    total = np.asarray(vector, dtype=np.float32)
    if centroid is not None and n:
        total = total + np.asarray(centroid, dtype=np.float32) * n
    return [round(float(x), 5) for x in total / (np.linalg.norm(total) or 1.0)]
