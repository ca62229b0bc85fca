"""What an incident's alert says, whatever renders it (a Slack alert, a Zendesk problem ticket)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from triage.store.incidents import Member, aware, rank
from triage.store.tables import IncidentRow

TIER_ORDER = ("enterprise", "pro", "free")
EXCERPTS = 3


@dataclass(frozen=True)
class IncidentView:
    incident_id: int
    count: int
    customers: dict[str, str | None]  # customer (id or name) -> tier
    first_at: datetime
    last_at: datetime
    urgency: str
    category: str
    key: str  # the group_by values, for people
    excerpts: list[dict[str, Any]]  # representative cases
    members: list[Member]

    @property
    def tiers(self) -> dict[str, int]:
        """How many distinct customers of each tier, the highest first."""
        counts: dict[str, int] = {}
        for tier in self.customers.values():
            counts[tier or "no tier"] = counts.get(tier or "no tier", 0) + 1
        return dict(sorted(counts.items(), key=lambda item: _tier_rank(item[0])))

    def since(self, counted: int) -> list[Member]:
        """The cases that joined after the alert last counted `counted`."""
        return [member for member in self.members if member.seq > counted]


def build(incident: IncidentRow, members: Sequence[Member]) -> IncidentView:
    payloads = [member.payload for member in members]
    customers: dict[str, str | None] = {}
    for payload in payloads:
        who = (
            payload.get("customer_id")
            or payload.get("customer_name")
            or f"conversation {payload['conversation_id']}"
        )
        customers.setdefault(str(who), payload.get("customer_tier"))
    first = payloads[0] if payloads else {}
    return IncidentView(
        incident_id=incident.id,
        count=max([incident.case_count, *(member.seq for member in members)]),
        customers=customers,
        first_at=aware(incident.first_case_at),
        last_at=aware(incident.last_case_at),
        urgency=incident.top_urgency,
        category=str(first.get("category") or "other"),
        key=str((first.get("group") or {}).get("key") or ""),
        excerpts=representative(payloads),
        members=list(members),
    )


def representative(payloads: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to three cases that show the incident: the first, the most urgent from the highest tier, and
    the latest, each from a different customer where possible."""
    if not payloads:
        return []
    chosen = [payloads[0]]
    ranked = sorted(payloads, key=lambda p: (-rank(p.get("urgency")), _tier_rank(p.get("customer_tier"))))
    for candidate in [*ranked, payloads[-1], *reversed(payloads)]:
        if len(chosen) == EXCERPTS:
            break
        customers = {p.get("customer_id") for p in chosen}
        if candidate not in chosen and (
            candidate.get("customer_id") not in customers or len(payloads) <= EXCERPTS
        ):
            chosen.append(candidate)
    return chosen


def _tier_rank(tier: str | None) -> int:
    return TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER)
