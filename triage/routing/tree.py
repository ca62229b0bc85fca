"""The routing file: receivers and a route tree with Alertmanager's semantics.

A message enters at the root. A route matches when all its matchers hold. Children are tried in
order; the first matching child takes the message unless it says `continue: true`. A matching route
none of whose children matched delivers to its own receiver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from triage.message import SupportMessage, Triage
from triage.routing.fields import Vocabulary
from triage.routing.grouping import NO_GROUPING, SIMILAR, Grouping
from triage.routing.matchers import Matcher, MatcherError, parse_matcher
from triage.routing.oncall import Escalate, InhibitRule, rules_problem
from triage.routing.timing import QuietHours, parse_duration
from triage.routing.yamlfile import fail_at, load_model, read_text

RESULTS_RECEIVER = "_results"  # the results topic: always delivered, not named in the routing file


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConsoleReceiver(Strict):
    pass


class SlackReceiver(Strict):
    channel: str = Field(min_length=1)


class HelpdeskReceiver(Strict):
    set_priority: bool = True
    tags: list[str] = Field(default_factory=list)
    internal_note: bool = True
    link_problem: bool = Field(
        False,
        description="a grouped incident with 2+ tickets gets a Zendesk problem ticket; members link to it",
    )


ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


def env_name(value: Any, example: str) -> str:
    """The name of an environment variable holding a secret; anything else (a URL, a key: the secret
    itself) is refused without repeating it, since secrets are never written in the routing file."""
    if not isinstance(value, str) or not ENV_NAME.match(value):
        shown = "a URL" if isinstance(value, str) and "://" in value else "a literal value"
        raise ValueError(
            f"must name the environment variable holding it (like {example}), not {shown}: "
            "secrets are never written in the routing file"
        )
    return value


class PagerDutyReceiver(Strict):
    routing_key: str = Field(description="the environment variable holding the Events API v2 routing key")

    @field_validator("routing_key", mode="before")
    @classmethod
    def _env(cls, value: Any) -> str:
        return env_name(value, "PAGERDUTY_ROUTING_KEY")


class MSTeamsReceiver(Strict):
    webhook_url: str = Field(description="the environment variable holding the Workflows webhook URL")

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _env(cls, value: Any) -> str:
        return env_name(value, "TEAMS_WEBHOOK_URL")


class WebhookReceiver(Strict):
    url: str = Field(description="where the JSON is POSTed (http or https)")
    secret: str = Field(description="the environment variable holding the HMAC-SHA256 signing secret")

    @field_validator("secret", mode="before")
    @classmethod
    def _env(cls, value: Any) -> str:
        return env_name(value, "WEBHOOK_SECRET")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class EmailReceiver(Strict):
    to: list[str] = Field(min_length=1, description="the addresses every alert goes to")

    @field_validator("to", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("to is a list of addresses, e.g. [oncall@example.com]")
        for address in value if isinstance(value, list) else []:
            if not isinstance(address, str) or not EMAIL.match(address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value


KINDS = ("console", "slack", "helpdesk", "pagerduty", "msteams", "webhook", "email")


class Receiver(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][\w.\-]*$")
    console: ConsoleReceiver | None = None
    slack: SlackReceiver | None = None
    helpdesk: HelpdeskReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    msteams: MSTeamsReceiver | None = None
    webhook: WebhookReceiver | None = None
    email: EmailReceiver | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Receiver:
        kinds = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(kinds) != 1:
            raise ValueError(f"receiver {self.name!r} needs exactly one of {', '.join(KINDS)}")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    def describe(self) -> str:
        """`oncall (Slack #support-urgent)`, for the worker's start line."""
        where = {
            "slack": lambda: f"Slack {self.slack.channel}",  # type: ignore[union-attr]
            "pagerduty": lambda: "PagerDuty",
            "msteams": lambda: "Teams",
            "webhook": lambda: f"webhook {self.webhook.url}",  # type: ignore[union-attr]
            "email": lambda: f"e-mail to {', '.join(self.email.to)}",  # type: ignore[union-attr]
        }.get(self.kind, lambda: self.kind)()
        return f"{self.name} ({where})"


class Route(Strict):
    receiver: str | None = None
    matchers: list[Matcher] = Field(default_factory=list)
    continue_: bool = Field(False, alias="continue")
    repeat_interval: timedelta | None = Field(
        None, description="follow-ups in a conversation re-notify the channel at most this often"
    )
    quiet_hours: QuietHours | None = None
    group_by: list[str] | None = Field(
        None, description="fields whose values make a group; [] stops grouping"
    )
    group_wait: timedelta | None = Field(
        None, description="after a group's first case, wait to gather the burst"
    )
    group_interval: timedelta | None = Field(
        None, description="at most one update of a group's alert per interval"
    )
    group_idle: timedelta | None = Field(None, description="a group with no new case for this long is closed")
    group_similarity: float | None = Field(None, gt=0, le=1, description="cosine similarity for `similar`")
    escalate: Escalate | None = Field(None, description="not taken within `after`: sent to `to`, once")
    routes: list[Route] = Field(default_factory=list)

    @field_validator("repeat_interval", "group_wait", "group_interval", "group_idle", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta | None:
        """A duration string only: a bare number (seconds? minutes?) or `-5` is refused."""
        return None if value is None else parse_duration(value)

    @field_validator("group_interval", "group_idle")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    def grouping(self, inherited: Grouping) -> Grouping:
        """This route's grouping: its own settings over those it inherits (children inherit each one)."""
        return Grouping(
            tuple(self.group_by) if self.group_by is not None else inherited.by,
            self.group_wait if self.group_wait is not None else inherited.wait,
            self.group_interval or inherited.interval,
            self.group_idle or inherited.idle,
            self.group_similarity or inherited.similarity,
        )

    @field_validator("matchers", mode="before")
    @classmethod
    def _parse_matchers(cls, value: Any) -> list[Matcher]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("matchers is a list of strings like 'urgency >= high'")
        try:
            return [parse_matcher(item) for item in value]
        except MatcherError as error:
            raise ValueError(str(error)) from None

    def matches(self, case: dict[str, Any]) -> bool:
        return all(matcher.matches(case) for matcher in self.matchers)


class RoutingConfig(Strict):
    receivers: list[Receiver] = Field(min_length=1)
    route: Route
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)


def _cross_check(config: RoutingConfig, vocabulary: Vocabulary) -> tuple[tuple[int | str, ...], str] | None:
    """The first problem pydantic cannot see (a reference, a matcher that can never be true), with the
    location it concerns."""
    names = [receiver.name for receiver in config.receivers]
    for index, name in enumerate(names):
        if name in names[:index]:
            return ("receivers", index, "name"), f"receiver name {name!r} is used twice"
    if config.route.receiver is None:
        return ("route",), "the root route needs a receiver (the default)"
    if config.route.matchers:
        return ("route", "matchers"), "the root route matches every message and takes no matchers"
    for loc, route in _walk(config.route, ("route",)):
        if route.receiver is not None and route.receiver not in names:
            return (*loc, "receiver"), f"receiver {route.receiver!r} is not defined under receivers"
        for index, matcher in enumerate(route.matchers):
            if problem := vocabulary.matcher_problem(matcher):
                return (*loc, "matchers", index), f"'{matcher}': {problem}"
        for index, name in enumerate(route.group_by or []):
            if name != SIMILAR and (problem := vocabulary.field_problem(name)):
                return (*loc, "group_by", index), f"{problem} (group_by also takes {SIMILAR!r})"
        if route.escalate is not None and route.escalate.to not in names:
            return (*loc, "escalate", "to"), f"receiver {route.escalate.to!r} is not defined under receivers"
    return rules_problem(config.inhibit_rules, vocabulary)


def _walk(route: Route, loc: tuple[int | str, ...]) -> list[tuple[tuple[int | str, ...], Route]]:
    found = [(loc, route)]
    for index, child in enumerate(route.routes):
        found.extend(_walk(child, (*loc, "routes", index)))
    return found


@dataclass(frozen=True)
class Match:
    """A receiver chosen for a case, with the settings of the route that chose it."""

    receiver: str
    path: str  # e.g. route.routes[1]
    repeat_interval: timedelta | None
    quiet_hours: QuietHours | None
    matchers: tuple[str, ...] = ()  # every matcher on the way from the root that held: why it was chosen
    grouping: Grouping = NO_GROUPING  # inherited settings; grouping applies when it names fields
    escalate: Escalate | None = None  # inherited, like repeat_interval

    @property
    def group(self) -> Grouping | None:
        return self.grouping if self.grouping.by else None


class RoutingTree:
    def __init__(
        self, config: RoutingConfig, source: str = "<memory>", vocabulary: Vocabulary | None = None
    ) -> None:
        self.config = config
        self.source = source
        self.vocabulary = vocabulary or Vocabulary()
        self.receivers = {receiver.name: receiver for receiver in config.receivers}

    def route(self, case: dict[str, Any]) -> list[str]:
        """Receiver names for a case, in tree order, each once."""
        return [match.receiver for match in self.matches(case)]

    def matches(self, case: dict[str, Any]) -> list[Match]:
        """The receivers for a case, each once (the first route that chose it wins)."""
        root = self.config.route
        inherited = Match(root.receiver or "", "route", root.repeat_interval, root.quiet_hours)
        chosen: dict[str, Match] = {}
        for match in self._match(root, "route", case, inherited, trace=None):
            chosen.setdefault(match.receiver, match)
        return list(chosen.values())

    def explain(self, case: dict[str, Any]) -> list[str]:
        """How the tree decided: each route tried, and the matcher that failed or the receiver chosen."""
        trace: list[str] = []
        root = self.config.route
        inherited = Match(root.receiver or "", "route", root.repeat_interval, root.quiet_hours)
        self._match(root, "route", case, inherited, trace)
        return trace

    def _match(
        self, route: Route, path: str, case: dict[str, Any], parent: Match, trace: list[str] | None
    ) -> list[Match]:
        depth = "  " * path.count("routes[")
        failed = next((m for m in route.matchers if not m.matches(case)), None)
        if failed is not None:
            if trace is not None:
                actual = case.get(failed.field)
                trace.append(f"{depth}{path}: no match, '{failed}' is false ({failed.field}={actual!r})")
            return []
        own = Match(
            route.receiver or parent.receiver,
            path,
            route.repeat_interval if route.repeat_interval is not None else parent.repeat_interval,
            route.quiet_hours or parent.quiet_hours,
            parent.matchers + tuple(str(m) for m in route.matchers),
            route.grouping(parent.grouping),
            route.escalate or parent.escalate,
        )
        if trace is not None:
            why = " and ".join(f"'{m}'" for m in route.matchers) or "no matchers"
            trace.append(f"{depth}{path}: matched ({why})")
        found: list[Match] = []
        for index, child in enumerate(route.routes):
            child_matches = self._match(child, f"{path}.routes[{index}]", case, own, trace)
            if child_matches:
                found.extend(child_matches)
                if not child.continue_:
                    if trace is not None and index + 1 < len(route.routes):
                        trace.append(f"{depth}  (stop: {path}.routes[{index}] has no 'continue: true')")
                    break
        if not found:
            if trace is not None:
                grouped = f", group {own.group.describe(case)}" if own.group else ""
                trace.append(f"{depth}{path}: delivers to {own.receiver}{grouped}")
            return [own]
        return found


def case_fields(message: SupportMessage, triage: Triage) -> dict[str, Any]:
    """The fields matchers can name: triage fields plus dotted paths into the message."""
    case: dict[str, Any] = {}
    _flatten(message.model_dump(mode="json"), "", case)
    case.update(triage.model_dump(mode="json"))
    case["conversation_id"] = message.conversation_key
    return case


def _flatten(value: Any, prefix: str, into: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}{key}.", into)
    else:
        into[prefix[:-1]] = value


def parse_routing(text: str, source: str = "<memory>", vocabulary: Vocabulary | None = None) -> RoutingTree:
    """Parse and check a routing file; `vocabulary` holds the configured categories (default: the
    built-in twelve)."""
    vocabulary = vocabulary or Vocabulary()
    config, root = load_model(text, source, RoutingConfig, "'receivers' and 'route'")
    problem = _cross_check(config, vocabulary)
    if problem:
        fail_at(source, root, *problem)
    return RoutingTree(config, source, vocabulary)


def load_routing(path: Path | str, vocabulary: Vocabulary | None = None) -> RoutingTree:
    return parse_routing(read_text(path, "routing file"), str(path), vocabulary)
