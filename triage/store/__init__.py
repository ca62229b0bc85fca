"""The store: every message, its triage result and the outbox, in SQLite or PostgreSQL."""

from triage.store.db import DeliveryUpdate, Store, StoreUnavailable

__all__ = ["DeliveryUpdate", "Store", "StoreUnavailable"]
