"""What an alert's on-call part shows, read from the store: who took it, what its mute would silence."""

from __future__ import annotations

import json
import re

from triage.oncall.acks import Target, acknowledgement, target_of
from triage.oncall.slack_blocks import TakeView
from triage.store import Store
from triage.store.tables import DeliveryRow, IncidentRow

PLAIN_VALUE = re.compile(r"^[\w.@:/+-]+$")


class TakeViews:
    def __init__(self, store: Store) -> None:
        self.store = store

    def for_delivery(self, delivery: DeliveryRow) -> TakeView:
        return self._view(delivery.id, target_of(delivery))

    def for_delivery_id(self, delivery_id: int) -> TakeView | None:
        with self.store.session(read_only=True) as session:
            delivery = session.get(DeliveryRow, delivery_id)
        return self.for_delivery(delivery) if delivery is not None else None

    def for_incident(self, incident: IncidentRow) -> TakeView:
        view = self._view(incident.opener_id or 0, Target(incident_id=incident.id))
        with self.store.session(read_only=True) as session:
            opener = session.get(DeliveryRow, incident.opener_id) if incident.opener_id else None
        category = (opener.payload or {}).get("category") if opener is not None else None
        return TakeView(view.delivery_id, view.taken_by, view.taken_at, mute_matchers(incident, category))

    def _view(self, delivery_id: int, target: Target) -> TakeView:
        taken = acknowledgement(self.store, target)
        if taken is None:
            return TakeView(delivery_id)
        return TakeView(delivery_id, taken.who, taken.acked_at)


def mute_matchers(incident: IncidentRow, category: str | None) -> list[str]:
    """ "Similar" cases: the incident's category and its group_by values (from its group key,
    `<route> {"field": "value", ...}`); a group by meaning alone is muted by category."""
    try:
        values = json.loads(incident.group_key.split(" ", 1)[1])
    except (IndexError, ValueError):
        values = {}
    if category and "category" not in values:
        values = {"category": category, **values}
    return [f"{name} = {_quoted(str(value))}" for name, value in values.items()]


def _quoted(value: str) -> str:
    return value if PLAIN_VALUE.match(value) else json.dumps(value)
