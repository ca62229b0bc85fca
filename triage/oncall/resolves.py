"""A ticket solved (or closed) in the helpdesk resolves the PagerDuty alerts its cases raised.

The helpdesk's event reader calls `solve_ticket()`; what resolves the pages (the worker: PagerDuty's
`resolve` through the outbox) is registered per store with `on_case_solved()`, as acks' first-take
listener is. Only a case's own alert is resolved: an incident's resolves when it goes idle
(triage/receivers/events.py), not when one of its tickets is solved.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from datetime import datetime

from triage.oncall.acks import alerted_cases
from triage.store import Store

log = logging.getLogger(__name__)
SOLVED = frozenset({"solved", "closed"})  # Zendesk's statuses of a ticket that needs no more work
_listeners: weakref.WeakKeyDictionary[Store, Callable[[str], None]] = weakref.WeakKeyDictionary()


def on_case_solved(store: Store, listener: Callable[[str], None]) -> None:
    _listeners[store] = listener


def solve_ticket(store: Store, ticket_id: str, at: datetime) -> int:
    """The ticket's cases alerted by `at` are solved: tell the listener each one; returns how many."""
    listener = _listeners.get(store)
    if listener is None:
        return 0
    message_ids = alerted_cases(store, ticket_id, at)
    for message_id in message_ids:
        try:
            listener(message_id)
        except Exception:  # the event is read; a failed follow-up must not stop the reader
            log.exception("after the ticket of %s was solved", message_id)
    return len(message_ids)
