"""A transparent keyword baseline (`model: "rules"`): every label can be traced to a word list below.

It is the floor the learned backends must beat, and a dependency-free classifier for tests and demos.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from triage.classify.headline import headline
from triage.message import SupportMessage, Triage

URGENT_WORDS = (
    "outage",
    "down for everyone",
    "all users",
    "production is down",
    "data loss",
    "lost all",
    "security breach",
    "hacked",
    "fraud",
    "unauthorized",
    "lawyer",
    "legal action",
    "emergency",
    "caído",
    "urgente",
    "panne",
    "dringend",
    "ausfall",
    "fora do ar",
)
HIGH_WORDS = (
    "urgent",
    "asap",
    "immediately",
    "can't log in",
    "cannot log in",
    "locked out",
    "charged twice",
    "double charged",
    "not working",
    "doesn't work",
    "broken",
    "error",
    "crash",
    "refund",
    "cancel",
    "still waiting",
    "third time",
    "unacceptable",
)
LOW_WORDS = ("feature request", "suggestion", "would be nice", "just wondering", "thank", "love", "great job")

NEGATIVE_WORDS = (
    "angry",
    "terrible",
    "awful",
    "horrible",
    "worst",
    "unacceptable",
    "disappointed",
    "frustrated",
    "ridiculous",
    "useless",
    "broken",
    "not working",
    "doesn't work",
    "can't",
    "cannot",
    "never",
    "still waiting",
    "charged twice",
    "refund",
    "cancel",
    "scam",
    "hate",
    "error",
    "fail",
    "down",
    "lost",
    "wrong",
    "problem",
    "issue",
    "late",
    "delay",
    "horrible",
    "pésimo",
    "terrible",
    "nul",
    "schlecht",
    "péssimo",
)
POSITIVE_WORDS = (
    "thank",
    "thanks",
    "great",
    "love",
    "awesome",
    "excellent",
    "amazing",
    "perfect",
    "helpful",
    "appreciate",
    "happy",
    "fantastic",
    "gracias",
    "merci",
    "danke",
    "obrigad",
)

CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "security": ("hacked", "breach", "phishing", "unauthorized", "suspicious login", "vulnerability"),
    "outage": ("outage", "down", "not loading", "unavailable", "503", "500 error", "status page"),
    "account_access": ("log in", "login", "password", "locked out", "2fa", "two-factor", "sign in"),
    "refund": ("refund", "money back", "reimburse"),
    "cancellation": ("cancel", "unsubscribe", "close my account", "terminate"),
    "billing": ("invoice", "charged", "charge", "billing", "payment", "card", "subscription", "price"),
    "shipping": ("shipping", "delivery", "package", "tracking", "courier", "arrived"),
    "bug": ("bug", "error", "crash", "broken", "doesn't work", "not working", "glitch"),
    "feature_request": ("feature", "would be nice", "please add", "suggestion", "wish"),
    "how_to": ("how do i", "how can i", "how to", "where can i", "is it possible"),
    "praise": ("thank", "love", "great job", "awesome", "excellent"),
}

LANGUAGE_WORDS: dict[str, tuple[str, ...]] = {
    "en": (
        "the",
        "and",
        "is",
        "my",
        "not",
        "you",
        "please",
        "with",
        "have",
        "a",
        "i",
        "to",
        "it",
        "for",
        "this",
        "of",
        "on",
        "can't",
        "help",
        "account",
        "was",
        "are",
    ),
    "es": (
        "el",
        "la",
        "los",
        "las",
        "que",
        "por",
        "para",
        "mi",
        "con",
        "está",
        "gracias",
        "y",
        "es",
        "una",
        "nos",
        "hoy",
        "pero",
        "muy",
        "ayuda",
        "necesito",
        "cuenta",
        "hola",
        "ya",
        "del",
    ),
    "fr": (
        "le",
        "la",
        "les",
        "est",
        "pas",
        "mon",
        "vous",
        "avec",
        "pour",
        "merci",
        "je",
        "et",
        "une",
        "des",
        "du",
        "nous",
        "ne",
        "mais",
        "très",
        "depuis",
        "aide",
        "compte",
        "bonjour",
        "ma",
        "ce",
    ),
    "de": (
        "der",
        "die",
        "das",
        "ist",
        "nicht",
        "mein",
        "und",
        "ich",
        "mit",
        "bitte",
        "danke",
        "ein",
        "eine",
        "wir",
        "sie",
        "auf",
        "seit",
        "hilfe",
        "konto",
        "hallo",
        "guten",
        "es",
        "zu",
        "mehr",
    ),
    "pt": (
        "o",
        "os",
        "não",
        "meu",
        "minha",
        "com",
        "para",
        "obrigado",
        "obrigada",
        "está",
        "você",
        "eu",
        "e",
        "um",
        "uma",
        "muito",
        "ajuda",
        "conta",
        "olá",
        "do",
        "da",
        "estamos",
        "vocês",
    ),
}

WORD = re.compile(r"[\w'’]+", re.UNICODE)


def _hits(text: str, phrases: Iterable[str]) -> int:
    return sum(1 for phrase in phrases if phrase in text)


def detect_language(text: str) -> str:
    words = WORD.findall(text.lower())
    scores = {lang: sum(word in vocab for word in words) for lang, vocab in LANGUAGE_WORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] > 0 else "en"


class RulesClassifier:
    name = "rules"

    def __init__(self, categories: Iterable[str]) -> None:
        self.categories = list(categories)

    def classify(self, message: SupportMessage) -> Triage:
        text = f"{message.subject or ''}\n{message.body}".lower()
        urgent, high, low = _hits(text, URGENT_WORDS), _hits(text, HIGH_WORDS), _hits(text, LOW_WORDS)
        if urgent:
            urgency = "urgent"
        elif high:
            urgency = "high"
        elif low:
            urgency = "low"
        else:
            urgency = "normal"
        negative, positive = _hits(text, NEGATIVE_WORDS), _hits(text, POSITIVE_WORDS)
        if negative > positive:
            sentiment = "negative"
        elif positive > negative:
            sentiment = "positive"
        else:
            sentiment = "neutral"
        scores = {
            category: _hits(text, words)
            for category, words in CATEGORY_WORDS.items()
            if category in self.categories
        }
        category = max(scores, key=lambda c: scores[c]) if scores and max(scores.values()) else "other"
        if category not in self.categories:
            category = self.categories[-1]
        evidence = urgent + high + low + negative + positive
        return Triage(
            urgency=urgency,
            sentiment=sentiment,
            category=category,
            language=detect_language(text),
            summary=headline(message),
            confidence=round(min(0.9, 0.4 + 0.1 * evidence), 2),
            model=self.name,
        )
