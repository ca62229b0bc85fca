"""A store, the Slack and Zendesk stand-ins, a routing tree, and the pipeline's routing for re-routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from tests.fakes.slack_socket import FakeSocketMode
from triage.classify.categories import category_names
from triage.pipeline import Pipeline
from triage.routing import RoutingTree, parse_routing
from triage.settings import ClassifierSettings, Settings
from triage.store import Store

ROUTING = """
receivers:
  - {name: log, console: {}}
  - {name: helpdesk, helpdesk: {tags: [ai_triaged]}}
  - {name: oncall, slack: {channel: "#oncall"}}
  - {name: cx, slack: {channel: "#cx"}}
route:
  receiver: log
  routes:
    - {receiver: helpdesk, continue: true}
    - {matchers: ['urgency >= high'], receiver: oncall, continue: true}
    - {matchers: ['sentiment = negative'], receiver: cx}
"""
CATEGORIES = category_names(ClassifierSettings())  # the default categories file's twelve
ANA = {"id": "U0ANA", "name": "ana"}


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    return store


@pytest.fixture
def tree() -> RoutingTree:
    return parse_routing(ROUTING)


@pytest.fixture
def pipeline(tree, store) -> Pipeline:
    """Only its routing is used (Pipeline.route): no classifier, producer or writer needed."""
    return Pipeline(Settings(), store, None, tree, None, None, "test")  # type: ignore[arg-type]


@pytest.fixture
def socket_mode(slack) -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as fake:
        slack.socket_mode = fake
        yield fake


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0
