"""The `helpdesk:` receiver: priority, tags and an internal note on the ticket, in the helpdesk the
message's `ticket.system` names (zendesk, gorgias, kustomer, freshdesk; triage/helpdesks/ has one module
for each). A message without `ticket.system` goes to the one configured helpdesk when exactly one is.

Outcomes: sent (a receipt records the ticket, for corrections); skipped with the reason when there is
no ticket or its helpdesk is not configured (counted per system); failed for good when the helpdesk
refuses the ticket (gone, forbidden, invalid: the reason is stored and logged, never retried); handed
back to the queue on a transient failure (a long 429, 5xx), not before the Retry-After.

A delivery claimed before (`attempts > 1`) may have been written before a crash: its marker is looked
for in the ticket's notes first, so the note is never written twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx

from triage.helpdesks import SETTINGS
from triage.helpdesks.base import Helpdesk, HelpdeskBusy, HelpdeskConfigError, ProblemTickets, TicketRefused
from triage.ops import metrics
from triage.receivers.base import DeliveryFailed, Outcome
from triage.routing.tree import HelpdeskReceiver
from triage.store.feedback import FeedbackStore
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow, IncidentRow, ReceiptRow

__all__ = ["HelpdeskConfigError", "HelpdeskSender", "check_all"]
log = logging.getLogger(__name__)


def check_all(desks: dict[str, Helpdesk]) -> None:
    """Check every configured helpdesk's credentials; one line per helpdesk that fails."""
    problems = []
    for desk in desks.values():
        try:
            desk.check()
        except HelpdeskConfigError as error:
            problems.append(str(error))
    if problems:
        raise HelpdeskConfigError("\n".join(problems))


class HelpdeskSender:
    batch_size = 1

    def __init__(
        self,
        desks: dict[str, Helpdesk],
        config: HelpdeskReceiver,
        incidents: Incidents,
        receipts: FeedbackStore | None = None,
    ) -> None:
        """`desks`: the configured helpdesks by system; `receipts`: where the tickets written to are
        recorded (what helpdesk corrections need)."""
        self.desks = desks
        self.config = config
        self.incidents = incidents
        self.receipts = receipts
        # grouped cases are linked to one problem ticket, in a helpdesk that has them
        self.problems = next((d for d in desks.values() if isinstance(d, ProblemTickets)), None)
        self.groups = config.link_problem and self.problems is not None

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        return [self._send(delivery) for delivery in deliveries]

    def _desk(self, system: Any) -> Helpdesk | str:
        """The helpdesk a ticket lives in, or why there is none."""
        if system in (None, ""):
            if len(self.desks) == 1:
                return next(iter(self.desks.values()))
            return "the message names no ticket.system and " + (
                f"{len(self.desks)} helpdesks are configured" if self.desks else "no helpdesk is configured"
            )
        name = str(system).lower()
        if name in self.desks:
            return self.desks[name]
        known = f" (no {SETTINGS[name]})" if name in SETTINGS else " (not a helpdesk triage writes to)"
        return f"helpdesk {name!r} is not configured{known}"

    def _send(self, delivery: DeliveryRow) -> Outcome | DeliveryFailed:
        case = delivery.payload
        ticket_id = case.get("ticket_id")
        if ticket_id in (None, ""):
            return Outcome("skipped", "no ticket id")
        desk = self._desk(case.get("ticket_system"))
        if isinstance(desk, str):
            metrics.HELPDESK_NOT_CONFIGURED.labels(str(case.get("ticket_system") or "")).inc()
            return Outcome("skipped", desk)
        ticket = str(ticket_id)
        try:
            if delivery.attempts > 1 and self.config.internal_note and desk.has_note(ticket, delivery.id):
                self._receipt(delivery, desk.system, ticket)
                return Outcome("sent", "found the note after a retry")
            if desk is self.problems and (problem := self._problem_of(delivery)) is not None:
                self.problems.write(ticket, case, self.config, delivery.id, problem_id=problem)
            else:
                desk.write(ticket, case, self.config, delivery.id)
        except TicketRefused as error:
            log.warning(
                "helpdesk delivery failed for good: %s",
                error,
                extra={"message_id": delivery.message_id, "receiver": delivery.receiver},
            )
            return Outcome("failed", str(error))
        except HelpdeskBusy as error:
            return DeliveryFailed(f"{desk.system} ticket {ticket}: {error}", error.retry_after_s)
        except httpx.HTTPError as error:
            return DeliveryFailed(f"{desk.system} ticket {ticket}: {type(error).__name__}: {error}")
        self._receipt(delivery, desk.system, ticket)
        return Outcome("sent", f"{desk.system} ticket {ticket} updated")

    def _receipt(self, delivery: DeliveryRow, system: str, ticket_id: str) -> None:
        """Triage wrote to this ticket: a later change to its priority or category tag is a correction."""
        if self.receipts is not None:
            self.receipts.record_receipt(
                ReceiptRow(
                    delivery_id=delivery.id, message_id=delivery.message_id, system=system, place=ticket_id
                )
            )

    def _problem_of(self, delivery: DeliveryRow) -> str | None:
        incident = self.incidents.get(delivery.incident_id) if delivery.incident_id is not None else None
        return incident.problem_ticket_id if incident is not None else None

    def update_incident(self, incident: IncidentRow) -> int | DeliveryFailed:
        """Create the incident's problem ticket (once) and link every member ticket of its helpdesk."""
        desk = self.problems
        if desk is None:
            return incident.case_count
        try:
            members = self.incidents.members(incident.id)
            problem = incident.problem_ticket_id
            if problem is None:
                problem = desk.problem_ticket(incident, members, self.config)
                self.incidents.problem_created(incident.id, problem)
            tickets = {
                str(m.payload["ticket_id"]): None
                for m in members
                if m.payload.get("ticket_id") not in (None, "")
                and self._desk(m.payload.get("ticket_system")) is desk
            }
            for ticket_id in tickets:
                desk.link(ticket_id, problem)
        except (HelpdeskBusy, TicketRefused) as error:
            return DeliveryFailed(f"problem ticket: {error}", getattr(error, "retry_after_s", None))
        except httpx.HTTPError as error:
            return DeliveryFailed(f"helpdesk problem ticket: {type(error).__name__}: {error}")
        return incident.case_count
