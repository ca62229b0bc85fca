"""What the on-call loop would do with a test case (`triage routes test`): the active silences in the
store that would hold it, the inhibit rules that would (and whether an open incident holds it now), and
the escalation each route would give it. Read-only: nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from triage.oncall import silences
from triage.oncall.gate import Gate, inhibiting
from triage.routing.matchers import parse_matcher
from triage.routing.tree import RoutingTree
from triage.store import Store, StoreUnavailable
from triage.store.tables import IncidentRow, SilenceRow


class StoreView:
    """The active silences and open incidents, read once for all the cases of a test file."""

    def __init__(self, database_url: str, tree: RoutingTree) -> None:
        self.problem: str | None = None  # why the store could not be read (the rules still show)
        self.silences: list[SilenceRow] = []
        self.incidents: list[tuple[IncidentRow, str, dict[str, Any]]] = []
        try:
            store = Store.existing(database_url)
        except StoreUnavailable as error:
            self.problem = str(error)
            return
        try:
            self.silences = silences.listed(store)
            self.incidents = Gate(store, tree.config.inhibit_rules).open_incidents()
        except (StoreUnavailable, SQLAlchemyError) as error:
            self.problem = str(error).splitlines()[0]
        finally:
            store.close()


def preview(tree: RoutingTree, fields: dict[str, Any], view: StoreView) -> list[str]:
    """One line per silence, inhibit rule and escalation the case (flattened fields) would meet."""
    now = datetime.now(UTC)
    matches = tree.matches(fields)
    lines = []
    for silence in view.silences:
        if all(parse_matcher(text).matches(fields) for text in silence.matchers):
            ends = silence.ends_at if silence.ends_at.tzinfo else silence.ends_at.replace(tzinfo=UTC)
            lines.append(
                f"silenced by {silence.id} ({' and '.join(silence.matchers)}) until {ends:%Y-%m-%d %H:%M} UTC"
                f" (in {_span(ends - now)})" + (f": {silence.comment}" if silence.comment else "")
            )
    receivers = [match.receiver for match in matches]
    for index, rule in enumerate(tree.config.inhibit_rules):
        if not all(m.matches(fields) for m in rule.target_matchers):
            continue
        same = ", ".join(f"{name} = {fields.get(name)}" for name in rule.equal)
        lines.append(
            f"inhibit_rules[{index}]: its alerts are held while an incident with "
            f"{' and '.join(str(m) for m in rule.source_matchers)} is open"
            + (f" (and the same {same})" if same else "")
            + " on another receiver"
        )
        for receiver in receivers:
            if held := inhibiting([rule], receiver, None, fields, view.incidents):
                lines.append(f"  held now: {receiver} by {held.detail.split(':', 1)[0]}")
    for match in matches:
        if match.escalate is not None:
            lines.append(
                f"{match.receiver} ({match.path}): not taken within {_span(match.escalate.after)} "
                f"of its alert, escalated to {match.escalate.to}"
            )
    return lines


def _span(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
