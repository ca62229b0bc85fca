"""Receivers turn a stored delivery into an effect: a results record, a console line, an alert."""

from triage.receivers.base import DeliveryFailed, Outcome, Sender

__all__ = ["DeliveryFailed", "Outcome", "Sender"]
