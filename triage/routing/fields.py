"""What a matcher (or a routing test case) may name: the fields of a case and the values they take.

A typo in a routing file (`urgncy`, `urgnet`, `customer.teir`) would make a route that never fires,
which silently stops alerts. So every field must be a triage field or a path of the input schema
(`metadata.*` is free), and a value compared with urgency, sentiment or category must be one of theirs.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from triage.classify.categories import category_names
from triage.history import ROUTING_FIELDS as HISTORY_FIELDS
from triage.history import TRENDS
from triage.message import SURVEY_SCALES, URGENCY_ORDER, SupportMessage, Triage
from triage.routing.matchers import ORDERED, Matcher, MatcherError, parse_matcher
from triage.settings import ClassifierSettings, Settings

FREE_PREFIX = "metadata."  # producers put anything there

# `==`, `=!`, `=>`, `=<`, `= ~`: an operator slipped into the value of `=` (or `!=`). The operator meant:
SLIPPED_OPERATOR = re.compile(r"^([=!<>~])\s*(.*)$")
SLIPS = {"=": {"=": "=", "!": "!=", ">": ">=", "<": "<=", "~": "=~"}, "!=": {"=": "!=", "~": "!~"}}
SURVEY_SCORES = tuple(str(n) for n in range(11))  # every scale's scores (NPS: 0-10)
NUMERIC = ("confidence", "prompt_tokens", "completion_tokens", "cost_usd")


def _schema_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of a pydantic model's fields, nested models included (customer.tier, ticket.id)."""
    paths = []
    for name, info in model.model_fields.items():
        nested = [
            arg
            for arg in (info.annotation, *typing.get_args(info.annotation))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        if nested:
            paths.extend(_schema_paths(nested[0], f"{prefix}{name}."))
        elif name != "metadata":
            paths.append(f"{prefix}{name}")
    return paths


# the customer's history (triage/history.py) is matched like a field of the message
FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys([*Triage.model_fields, *_schema_paths(SupportMessage), *HISTORY_FIELDS])
)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


@dataclass(frozen=True)
class Vocabulary:
    """The values a case's closed fields take; categories come from the classifier's configuration."""

    categories: tuple[str, ...] = field(default_factory=lambda: tuple(category_names(ClassifierSettings())))

    @classmethod
    def from_settings(cls, settings: Settings) -> Vocabulary:
        """The categories the configured classifier gives (its categories file, or a trained head's)."""
        return cls(tuple(category_names(settings.classifier)))

    @property
    def values(self) -> dict[str, tuple[str, ...]]:
        return {
            "urgency": URGENCY_ORDER,
            "sentiment": ("negative", "neutral", "positive"),
            "category": self.categories,
            "degraded": ("true", "false"),
            "customer.sentiment_trend": TRENDS,
            "survey.type": tuple(SURVEY_SCALES),
            "survey.score": SURVEY_SCORES,
        }

    def field_problem(self, name: str) -> str | None:
        """Why `name` is not a field a case has, or None."""
        if name in FIELDS or (name.startswith(FREE_PREFIX) and len(name) > len(FREE_PREFIX)):
            return None
        return f"unknown field {name!r}" + (
            did_you_mean(name, FIELDS) or f" (fields: {', '.join(FIELDS)}, metadata.*)"
        )

    def value_problem(self, name: str, value: object) -> str | None:
        """Why `value` can never be the value of the closed field `name`, or None."""
        known = self.values.get(name)
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        if known is None or shown in known:
            return None
        return f"{name} is one of {', '.join(known)}, not {shown!r}{did_you_mean(shown, known)}"

    def matcher_problem(self, matcher: Matcher) -> str | None:
        """Why a matcher can never be true as written (an unknown field, a value the field never has)."""
        if problem := self.field_problem(matcher.field):
            return problem
        name, op = matcher.field, matcher.op
        slipped = None if matcher.quoted or op not in SLIPS else SLIPPED_OPERATOR.match(matcher.value)
        if slipped and slipped[1] in SLIPS[op]:
            return self._slipped(name, op, matcher.value, slipped)
        if op in ORDERED and name != "urgency":
            if name in self.values and name != "survey.score":
                return f"{name} has no order: use = or in"
            if matcher.number is None:
                return f"{op} compares numbers (or urgency levels), got {matcher.value!r}"
            return None
        if name not in self.values:
            return None
        if op in ("=~", "!~"):
            assert matcher.pattern is not None
            if not any(matcher.pattern.fullmatch(value) for value in self.values[name]):
                return f"the pattern {matcher.value!r} matches no {name} ({', '.join(self.values[name])})"
            return None
        values: Sequence[str] = matcher.choices if op == "in" else (matcher.value,)
        for value in values:
            if value in self.values[name]:
                continue
            return self.value_problem(name, value)
        return None

    def _slipped(self, name: str, op: str, value: str, slipped: re.Match[str]) -> str:
        """`urgency => high` parses as `urgency = "> high"`, `channel =! email` as `channel = "! email"`:
        point at the operator meant, whatever the field (such a route would never fire)."""
        meant = f"{name} {SLIPS[op][slipped[1]]} {slipped[2]}"
        if name in self.values:
            known = ", ".join(self.values[name])
            return f"{name} is one of {known}, not {value!r}; did you mean {meant!r}?"
        return (
            f"the value {value!r} starts with an operator; did you mean {meant!r}? "
            "(a value that really starts so: put it in quotes)"
        )


PERSONAL = ("customer.email", "customer.phone", "customer.name")  # what redaction takes out of a message


def without_personal_data(matcher: str) -> str:
    """A matcher as shown where the store keeps no original text: `customer.email = [hidden]`, so
    the alert's "why" (stored in the outbox) does not name the address a route matched."""
    try:
        parsed = parse_matcher(matcher)
    except MatcherError:
        return matcher
    return f"{parsed.field} {parsed.op} [hidden]" if parsed.field in PERSONAL else matcher
