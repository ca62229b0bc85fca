"""Classifiers: turn a support message into a Triage (urgency, sentiment, category, language, ...)."""

from triage.classify.base import Classifier, check_backend, make_classifier

__all__ = ["Classifier", "check_backend", "make_classifier"]
