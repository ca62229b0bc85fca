"""The store: every message, its triage result and the outbox, in SQLite or PostgreSQL."""

from triage.store.db import Backlog, DeliveryUpdate, RecordPosition, Store, StoreUnavailable, Triaged
from triage.store.writer import BatchWriter

__all__ = [
    "Backlog",
    "BatchWriter",
    "DeliveryUpdate",
    "RecordPosition",
    "Store",
    "StoreUnavailable",
    "Triaged",
]
