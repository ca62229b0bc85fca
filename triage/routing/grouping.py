"""Grouping, with Alertmanager's names: cases with the same values of `group_by` form one incident.

A route (and its children, which inherit) may set `group_by`, `group_wait`, `group_interval`,
`group_idle` and `group_similarity`. `similar` in `group_by` splits a group by meaning: a case joins the
open incident whose first cases its text is closest to, when the cosine similarity of their embeddings
is at least `group_similarity`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

SIMILAR = "similar"
DEFAULT_WAIT = timedelta(seconds=10)
DEFAULT_INTERVAL = timedelta(minutes=1)
DEFAULT_IDLE = timedelta(minutes=30)
# On our own labelled support incidents (data/incident_examples.csv, `python benchmarks/similarity.py
# data/incident_examples.csv`), 0.30 makes about two alerts per incident and merges 2.5% of the cases
# into another problem's incident; lower merges more (the worse error), higher splits more.
DEFAULT_SIMILARITY = 0.30


@dataclass(frozen=True)
class Grouping:
    """How a route groups the cases it sends to its receiver."""

    by: tuple[str, ...]
    wait: timedelta = DEFAULT_WAIT
    interval: timedelta = DEFAULT_INTERVAL
    idle: timedelta = DEFAULT_IDLE
    similarity: float = DEFAULT_SIMILARITY

    @property
    def similar(self) -> bool:
        return SIMILAR in self.by

    def values(self, case: dict[str, Any]) -> dict[str, str]:
        """The case's values of the group_by fields (`similar` is decided later, by the embedding)."""
        return {
            name: "" if case.get(name) is None else str(case[name]) for name in self.by if name != SIMILAR
        }

    def key(self, route: str, case: dict[str, Any]) -> str:
        """Identifies the group within a receiver: the route and the group_by values."""
        return f"{route} {json.dumps(self.values(case), sort_keys=True, ensure_ascii=False)}"

    def describe(self, case: dict[str, Any]) -> str:
        """`category=outage, similar` for people (routes test, --explain, logs)."""
        shown = [f"{name}={value}" for name, value in self.values(case).items()]
        return ", ".join(shown + ([SIMILAR] if self.similar else [])) or "(everything)"

    def settings(self) -> dict[str, float]:
        """What a delivery carries so its sender can group it (stored in the delivery's payload)."""
        return {
            "wait_s": self.wait.total_seconds(),
            "interval_s": self.interval.total_seconds(),
            "idle_s": self.idle.total_seconds(),
            "similarity": self.similarity,
        }


NO_GROUPING = Grouping(())  # the root's: one alert per case; a route that sets group_by changes it
