"""Silences, kept in the store so that every worker applies them: a delivery whose case matches all of
a silence's matchers, claimed while the silence is active, is stored as `silenced` (with the silence's
id) and never sent. A silence ends by itself at `ends_at`; nothing it held back is sent afterwards.

Matchers are the routing file's (triage/routing/matchers.py) and are checked the same way: a field or
a value the routing file would refuse is refused here, in one line.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from triage.routing.fields import Vocabulary
from triage.routing.matchers import Matcher, MatcherError, parse_matcher
from triage.store import Store
from triage.store.tables import SilenceRow

MUTE_FOR = timedelta(hours=2)  # the incident alert's "Mute similar for 2 h"


class SilenceError(ValueError):
    """A silence that cannot be made (a matcher the routing file would refuse, a bad duration)."""


def check_matchers(texts: Sequence[str], vocabulary: Vocabulary) -> list[Matcher]:
    if not texts:
        raise SilenceError("a silence needs at least one matcher, e.g. 'category = outage'")
    matchers = []
    for text in texts:
        try:
            matcher = parse_matcher(text)
        except MatcherError as error:
            raise SilenceError(str(error)) from None
        if problem := vocabulary.matcher_problem(matcher):
            raise SilenceError(f"matcher '{text}': {problem}")
        matchers.append(matcher)
    return matchers


def add(
    store: Store,
    matchers: Sequence[str],
    duration: timedelta,
    comment: str,
    created_by: str,
    silence_id: str | None = None,
) -> str:
    """Store a silence (matchers checked by check_matchers) starting now; returns its id. With
    `silence_id` (a click's), storing it twice stores it once."""
    if duration <= timedelta(0):
        raise SilenceError("a silence must last longer than 0s")
    now = datetime.now(UTC)
    silence_id = silence_id or uuid.uuid4().hex[:12]
    with store.session() as session:
        module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            module.insert(SilenceRow)
            .values(
                id=silence_id,
                matchers=list(matchers),
                starts_at=now,
                ends_at=now + duration,
                comment=comment,
                created_by=created_by[:128],
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
    return silence_id


def listed(store: Store, include_ended: bool = False) -> list[SilenceRow]:
    now = datetime.now(UTC)
    query = select(SilenceRow).order_by(SilenceRow.ends_at)
    if not include_ended:
        query = query.where(SilenceRow.ends_at > now)
    with store.session(read_only=True) as session:
        return list(session.scalars(query))


def expire(store: Store, silence_id: str) -> bool:
    """End a silence now; False when there is no active silence with that id."""
    now = datetime.now(UTC)
    with store.session() as session:
        ended = session.execute(
            update(SilenceRow)
            .where((SilenceRow.id == silence_id) & (SilenceRow.ends_at > now))
            .values(ends_at=now)
        )
        return bool(ended.rowcount)


def active(store: Store) -> list[tuple[str, list[Matcher]]]:
    """The silences in force now: (id, matchers)."""
    now = datetime.now(UTC)
    query = select(SilenceRow.id, SilenceRow.matchers).where(
        (SilenceRow.ends_at > now) & (SilenceRow.starts_at <= now)
    )
    with store.session(read_only=True) as session:
        return [(sid, [parse_matcher(text) for text in texts]) for sid, texts in session.execute(query)]


def matching(silences: Sequence[tuple[str, list[Matcher]]], case: dict) -> str | None:
    """The id of the first silence all of whose matchers hold for the case."""
    return next((sid for sid, matchers in silences if all(m.matches(case) for m in matchers)), None)
