"""Classifiers: turn a support message into a Triage (urgency, sentiment, category, language, ...)."""

from triage.classify.base import Classifier, make_classifier

__all__ = ["Classifier", "make_classifier"]
