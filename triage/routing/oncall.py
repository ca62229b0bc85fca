"""The routing file's on-call parts: a route's `escalate` and the tree's `inhibit_rules`.

`inhibit_rules` follow Alertmanager's: a target is muted while a source exists that matches
`source_matchers`, the target matches `target_matchers`, and every field named in `equal` has the same
value in both (missing in both counts as equal). Here a source is an open incident (its first case's
fields) and a target is a per-case delivery; a case never inhibits itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from triage.routing.fields import Vocabulary
from triage.routing.matchers import Matcher, MatcherError, parse_matcher
from triage.routing.timing import parse_duration


class Escalate(BaseModel):
    """`escalate: {after: 15m, to: lead}`: a case sent by the route and not taken within `after` of its
    alert's delivery is sent to `to`, once."""

    model_config = ConfigDict(extra="forbid")

    after: timedelta
    to: str = Field(min_length=1)

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        after = parse_duration(value)
        if after <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return after


def parse_matchers(value: Any) -> list[Matcher]:
    """A list of matcher strings (pydantic validator helper; also the silence CLI's)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("matchers are a list of strings like 'category = outage'")
    try:
        return [parse_matcher(item) for item in value]
    except MatcherError as error:
        raise ValueError(str(error)) from None


class InhibitRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_matchers: list[Matcher] = Field(min_length=1)
    target_matchers: list[Matcher] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)

    @field_validator("source_matchers", "target_matchers", mode="before")
    @classmethod
    def _matchers(cls, value: Any) -> list[Matcher]:
        return parse_matchers(value)

    def inhibits(self, source: dict[str, Any], target: dict[str, Any]) -> bool:
        return (
            all(m.matches(source) for m in self.source_matchers)
            and all(m.matches(target) for m in self.target_matchers)
            and all(source.get(name) == target.get(name) for name in self.equal)
        )

    def describe(self) -> str:
        said = (
            f"while an incident with {' and '.join(f'{m}' for m in self.source_matchers)} is open, "
            f"cases with {' and '.join(f'{m}' for m in self.target_matchers)}"
        )
        return said + (f" and the same {', '.join(self.equal)}" if self.equal else "")


def rules_problem(
    rules: Sequence[InhibitRule], vocabulary: Vocabulary
) -> tuple[tuple[int | str, ...], str] | None:
    """The first field or value the vocabulary does not know in the inhibit rules, with its location."""
    for index, rule in enumerate(rules):
        for key in ("source_matchers", "target_matchers"):
            for position, matcher in enumerate(getattr(rule, key)):
                if problem := vocabulary.matcher_problem(matcher):
                    return ("inhibit_rules", index, key, position), f"'{matcher}': {problem}"
        for position, name in enumerate(rule.equal):
            if problem := vocabulary.field_problem(name):
                return ("inhibit_rules", index, "equal", position), problem
    return None
