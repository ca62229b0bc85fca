"""Testing a routing file before it goes live: expected-receiver cases, and a replay of stored traffic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from triage.history import history_fields
from triage.message import SupportMessage, Triage
from triage.routing.fields import did_you_mean
from triage.routing.tree import RoutingTree, case_fields
from triage.routing.yamlfile import fail_at, load_model, read_text


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    fields: dict[str, Any] = Field(
        description="triage fields and message paths; nested mappings are flattened"
    )
    expect: list[str]


class CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cases: list[Case] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    name: str
    expected: list[str]
    actual: list[str]
    explanation: list[str]
    groups: dict[str, str] = field(default_factory=dict)  # receiver -> the group the case would join

    @property
    def passed(self) -> bool:
        return sorted(self.expected) == sorted(self.actual)

    @property
    def missing(self) -> list[str]:
        return [name for name in self.expected if name not in self.actual]

    @property
    def unexpected(self) -> list[str]:
        return [name for name in self.actual if name not in self.expected]


def flatten(fields: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_cases(path: Path | str, tree: RoutingTree) -> list[Case]:
    """Read a case file; a field a case cannot have, a value its field never takes, or a receiver the
    tree does not know is an error with its line (a typo there would pass, testing nothing)."""
    cases, root = load_model(read_text(path, "routing test file"), str(path), CaseFile, "'cases'")
    for index, case in enumerate(cases.cases):
        for loc, name, value in _leaves(case.fields, ("cases", index, "fields")):
            problem = tree.vocabulary.field_problem(name) or tree.vocabulary.value_problem(name, value)
            if problem:
                fail_at(str(path), root, loc, problem)
        for position, receiver in enumerate(case.expect):
            if receiver not in tree.receivers:
                known = f"({', '.join(tree.receivers)}){did_you_mean(receiver, tree.receivers)}"
                problem = f"receiver {receiver!r} is not in {tree.source} {known}"
                fail_at(str(path), root, ("cases", index, "expect", position), problem)
    return cases.cases


def _leaves(
    fields: dict[str, Any], loc: tuple[int | str, ...], prefix: str = ""
) -> Iterator[tuple[tuple[int | str, ...], str, Any]]:
    """(location in the file, dotted field name, value) for every leaf of a case's nested fields."""
    for key, value in fields.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*loc, key), f"{prefix}{key}.")
        else:
            yield (*loc, key), f"{prefix}{key}", value


def run_cases(tree: RoutingTree, cases: Iterable[Case]) -> list[CaseResult]:
    results = []
    for index, case in enumerate(cases, start=1):
        fields = flatten(case.fields)
        matches = tree.matches(fields)
        groups = {m.receiver: f"{m.path} {m.group.describe(fields)}" for m in matches if m.group}
        results.append(
            CaseResult(
                case.name or f"case {index}",
                case.expect,
                [m.receiver for m in matches],
                tree.explain(fields),
                groups,
            )
        )
    return results


@dataclass
class RouteDiff:
    """What a new routing tree would change on a set of past cases."""

    cases: int = 0
    changed: int = 0
    appear: Counter[str] = field(default_factory=Counter)  # receiver -> alerts the new tree adds
    disappear: Counter[str] = field(default_factory=Counter)  # receiver -> alerts it removes
    examples: dict[str, list[str]] = field(default_factory=dict)  # "+receiver"/"-receiver" -> message ids

    def add(self, message_id: str, live: list[str], new: list[str]) -> None:
        self.cases += 1
        added = [r for r in new if r not in live]
        removed = [r for r in live if r not in new]
        if added or removed:
            self.changed += 1
        for sign, receivers, counter in (("+", added, self.appear), ("-", removed, self.disappear)):
            for receiver in receivers:
                counter[receiver] += 1
                sample = self.examples.setdefault(f"{sign}{receiver}", [])
                if len(sample) < 5:
                    sample.append(message_id)


def diff_trees(live: RoutingTree, new: RoutingTree, cases: Iterable[tuple[str, dict[str, Any]]]) -> RouteDiff:
    diff = RouteDiff()
    for message_id, fields in cases:
        diff.add(message_id, live.route(fields), new.route(fields))
    return diff


def stored_case(parsed: dict[str, Any], result: Any) -> dict[str, Any]:
    """Matcher fields for a stored message and its TriageRow, as the worker saw them."""
    triage = Triage.model_validate({name: getattr(result, name) for name in Triage.model_fields})
    history = history_fields(getattr(result, "customer_history", None))
    return {**case_fields(SupportMessage.model_validate(parsed), triage), **history}
