"""The fields a person can correct, the values each takes, and the Slack action ids that set them."""

from __future__ import annotations

from collections.abc import Sequence

from triage.classify.categories import category_names
from triage.message import URGENCY_ORDER
from triage.settings import Settings

FIELDS = ("urgency", "sentiment", "category")
SENTIMENTS = ("negative", "neutral", "positive")
RIGHT = "triage_right"  # the button: the model's urgency, sentiment and category are right
SETTERS = {"triage_urgency": "urgency", "triage_sentiment": "sentiment", "triage_category": "category"}
BLOCK_PREFIX = "triage_feedback:"  # the alert's actions block: triage_feedback:<delivery id>


def values(field: str, categories: Sequence[str]) -> tuple[str, ...]:
    """The values a field takes (categories: the configured ones)."""
    if field == "urgency":
        return URGENCY_ORDER
    if field == "sentiment":
        return SENTIMENTS
    return tuple(categories)


def category_choices(settings: Settings) -> list[str]:
    """The categories a person can choose: those the classifier outputs (the categories file's, or a
    trained category head's in TRIAGE_CLASSIFIER__MODEL_DIR)."""
    return category_names(settings.classifier)
