"""A person's judgement of a triaged message becomes labels; a changed urgency re-routes the case.

Shared by the Slack buttons and the Zendesk ticket-event reader. A label keeps the model's value beside
the person's (the model's own judgement is never a label). When the person's urgency differs from the
model's, the case is routed again with that urgency, as an escalation would be: receivers it now
reaches and had no delivery for get one, stored with the label in one transaction, so a click or an
event handled twice sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from triage.message import SupportMessage, Triage
from triage.ops import metrics
from triage.store import Store
from triage.store.feedback import Correction, FeedbackStore
from triage.store.tables import DeliveryRow, LabelRow, MessageRow, TriageRow

# The pipeline's routing: (message, judgement, payload extras) -> (receivers, deliveries)
Route = Callable[..., tuple[list[str], list[DeliveryRow]]]  # Pipeline.route


@dataclass(frozen=True)
class Judgement:
    """What a person said about one field of a message; value None: the model's value is right."""

    message_id: str
    field: str
    value: str | None
    source: str  # slack, or the helpdesk: zendesk | gorgias | kustomer | freshdesk
    person_id: str
    person_name: str | None
    place: str  # where it was said: the alert, or the ticket
    event: str  # the click or change at its source; with source and field it makes the label's key
    at: datetime


class Recorder:
    def __init__(
        self, store: Store, route: Route | None = None, wake: Callable[[], None] | None = None
    ) -> None:
        """`route`: the pipeline's routing (None: no re-routing); `wake`: called when deliveries were
        stored (the outbox looks for them at once)."""
        self.store = store
        self.feedback = FeedbackStore(store)
        self.route = route
        self.wake = wake

    def correction(self, judgements: Sequence[Judgement]) -> Correction | None:
        """The labels of one click or change (all about one message) and the deliveries a changed
        urgency calls for; None when the message is not in the store."""
        found = self.store.results([judgements[0].message_id])
        if not found:
            return None
        [(message, result)] = found
        labels = [
            LabelRow(
                message_id=message.id,
                field=judgement.field,
                model_value=getattr(result, judgement.field),
                team_value=judgement.value or getattr(result, judgement.field),
                source=judgement.source,
                person_id=judgement.person_id,
                person_name=judgement.person_name,
                place=judgement.place,
                event_key=f"{judgement.source}:{judgement.event}:{judgement.field}",
                labelled_at=judgement.at,
            )
            for judgement in judgements
        ]
        return Correction(labels, self._reroute(message, result, labels))

    def _reroute(self, message: MessageRow, result: TriageRow, labels: list[LabelRow]) -> list[DeliveryRow]:
        """Deliveries for the receivers the case reaches with the person's urgency and did not before."""
        urgency = next((label for label in labels if label.field == "urgency"), None)
        if self.route is None or urgency is None or urgency.team_value == urgency.model_value:
            return []
        judged = {name: getattr(result, name) for name in Triage.model_fields}
        corrected = Triage.model_validate({**judged, "urgency": urgency.team_value})
        note = {
            "field": "urgency",
            "value": urgency.team_value,
            "model": urgency.model_value,
            "by": urgency.person_name or urgency.person_id,
        }
        _, deliveries = self.route(
            SupportMessage.model_validate(message.parsed),
            corrected,
            {"correction": note},
            history=result.customer_history,
        )
        reached = self.feedback.receivers_of(message.id)
        return [delivery for delivery in deliveries if delivery.receiver not in reached]

    def record(
        self, corrections: Sequence[Correction], cursor: tuple[str, str] | None = None
    ) -> list[LabelRow]:
        """Store the corrections (and move the cursor); returns the labels that are new."""
        stored = self.feedback.save(corrections, cursor)
        for label in stored:
            counter = metrics.CORRECTIONS if label.team_value != label.model_value else metrics.CONFIRMATIONS
            counter.labels(label.field, label.source).inc()
        new_ids = {label.id for label in stored}
        rerouted = any(
            correction.deliveries and any(label.id in new_ids for label in correction.labels)
            for correction in corrections
        )
        if rerouted and self.wake is not None:
            self.wake()
        return stored
