"""Matchers: `FIELD OP VALUE` conditions on a case (a triage result plus its message)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from triage.message import URGENCY_ORDER

OPERATORS = ("=~", "!~", "!=", ">=", "<=", "=", ">", "<", "in")
ORDERED = (">=", ">", "<=", "<")
MATCHER = re.compile(
    r"""^\s*(?P<field>[A-Za-z_][\w.\-]*)\s*
        (?P<op>=~|!~|!=|>=|<=|=|>|<|\bin\b)\s*
        (?P<value>.*?)\s*$""",
    re.VERBOSE,
)


class MatcherError(ValueError):
    pass


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


@dataclass(frozen=True)
class Matcher:
    field: str
    op: str
    value: str
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = field(default=None, compare=False)
    number: float | None = None
    quoted: bool = False  # the value was written in quotes: taken as it is, whatever it starts with

    def __str__(self) -> str:
        shown = f"({', '.join(self.choices)})" if self.op == "in" else self.value
        return f"{self.field} {self.op} {shown}"

    def matches(self, case: dict[str, Any]) -> bool:
        actual = case.get(self.field)
        text = "" if actual is None else str(actual).lower() if isinstance(actual, bool) else str(actual)
        if self.op == "=":
            return text == self.value
        if self.op == "!=":
            return text != self.value
        if self.op == "in":
            return text in self.choices
        if self.op in ("=~", "!~"):
            assert self.pattern is not None
            found = self.pattern.fullmatch(text) is not None
            return found if self.op == "=~" else not found
        return self._compare(actual)

    def _compare(self, actual: Any) -> bool:
        if self.field == "urgency":
            if actual not in URGENCY_ORDER or self.value not in URGENCY_ORDER:
                return False
            left, right = URGENCY_ORDER.index(actual), URGENCY_ORDER.index(self.value)
        else:
            try:
                left, right = float(actual), float(self.number)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False  # a missing or non-numeric field never satisfies an ordering
        return {">=": left >= right, ">": left > right, "<=": left <= right, "<": left < right}[self.op]


def parse_matcher(source: str) -> Matcher:
    """Parse `urgency >= high`, `customer.tier in (enterprise, pro)`, `category =~ "bill.*"`.

    This checks the syntax; whether the field exists and can take the value is the Vocabulary's
    check (triage/routing/fields.py), which every routing file goes through when it is loaded."""
    found = MATCHER.match(source)
    if not found or not found["value"]:
        raise MatcherError(
            f"cannot parse matcher {source!r}: expected FIELD OP VALUE with OP one of {' '.join(OPERATORS)}"
        )
    name, op, raw = found["field"], found["op"], found["value"]
    if op == "in":
        if not (raw.startswith("(") and raw.endswith(")")):
            raise MatcherError(
                f"matcher {source!r}: 'in' takes a list in parentheses, e.g. (pro, enterprise)"
            )
        choices = tuple(_unquote(part.strip()) for part in raw[1:-1].split(",") if part.strip())
        if not choices:
            raise MatcherError(f"matcher {source!r}: the list after 'in' is empty")
        return Matcher(name, op, raw, choices=choices)
    value = _unquote(raw)
    if op in ("=~", "!~"):
        try:
            return Matcher(name, op, value, pattern=re.compile(value))
        except re.error as error:
            raise MatcherError(f"matcher {source!r}: bad regular expression: {error}") from None
    if op in ORDERED and name != "urgency":
        try:
            return Matcher(name, op, value, number=float(value))
        except ValueError:
            return Matcher(name, op, value)  # refused by the vocabulary check, which names the field first
    return Matcher(name, op, value, quoted=value != raw)
