"""Survey answers without a comment: judged from the score, never sent to a model as empty text.

A survey answer with a comment is classified like any message (the comment is the body). One without
has nothing to read, so its sentiment comes from the score's band on its scale (docs/report.md, "CX
scores"): a detractor is negative, a passive neutral, a promoter positive. Its urgency is normal when
negative (someone may want to call back) and low otherwise; its category is `other` (the configured
list's last name when `other` is not in it); its language `und` (undetermined, ISO 639-2).
"""

from __future__ import annotations

from collections.abc import Sequence

from triage.classify.base import Classifier
from triage.message import Sentiment, SupportMessage, Survey, Triage

MODEL = "survey-score"
LANGUAGE = "und"
FALLBACK_CATEGORY = "other"

# The highest negative and lowest positive score of each scale; the scores between are neutral.
BANDS: dict[str, tuple[int, int]] = {
    "nps": (6, 9),  # detractors 0-6, passives 7-8, promoters 9-10
    "csat": (2, 4),  # unsatisfied 1-2, neutral 3, satisfied 4-5
    "ces": (3, 5),  # hard 1-3, neutral 4, easy 5-7
}
BAND_NAMES: dict[str, tuple[str, str, str]] = {
    "nps": ("detractor", "passive", "promoter"),
    "csat": ("unsatisfied", "neutral", "satisfied"),
    "ces": ("high effort", "neutral", "low effort"),
}


def sentiment_of(survey: Survey) -> Sentiment:
    negative_up_to, positive_from = BANDS[survey.type]
    if survey.score <= negative_up_to:
        return "negative"
    return "positive" if survey.score >= positive_from else "neutral"


def band_name(survey: Survey) -> str:
    names = BAND_NAMES[survey.type]
    return {"negative": names[0], "neutral": names[1], "positive": names[2]}[sentiment_of(survey)]


def needs_model(message: SupportMessage) -> bool:
    """Whether a model has text to judge: false only for a survey answer that left the comment empty."""
    return message.survey is None or bool(message.body.strip())


def judge_survey(survey: Survey, categories: Sequence[str]) -> Triage:
    sentiment = sentiment_of(survey)
    category = FALLBACK_CATEGORY if FALLBACK_CATEGORY in categories or not categories else categories[-1]
    return Triage(
        urgency="normal" if sentiment == "negative" else "low",
        sentiment=sentiment,
        category=category,
        language=LANGUAGE,
        summary=f"{survey.type.upper()} {survey.score} ({band_name(survey)}), no comment",
        confidence=1.0,
        model=MODEL,
    )


def classify_case(classifier: Classifier, message: SupportMessage, categories: Sequence[str]) -> Triage:
    """The classifier's judgement, or the score's for a survey answer without a comment."""
    if message.survey is not None and not needs_model(message):
        return judge_survey(message.survey, categories)
    return classifier.classify(message)
