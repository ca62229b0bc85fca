"""The cascade: the embedded model judges every message, the LLM stand-in (which records every request)
is asked exactly where the rule says, and an outage leaves the embedded answer."""

from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply
from triage.classify.cascade import AskRule, CascadeClassifier, routed_categories
from triage.classify.categories import load_categories
from triage.classify.embedded import EmbeddedClassifier
from triage.classify.evaluate import read_examples
from triage.classify.fallback import CircuitBreaker, FallbackClassifier
from triage.classify.llm import FENCE, LLMClassifier, fence
from triage.message import SupportMessage
from triage.routing import Vocabulary, parse_routing
from triage.settings import CascadeSettings, ClassifierSettings, LLMSettings

SUPPORT = Path(__file__).parents[2] / "data" / "support_examples.csv"
CATEGORIES = load_categories(ClassifierSettings())
NAMES = [category.name for category in CATEGORIES]


@pytest.fixture(scope="module")
def embedded() -> EmbeddedClassifier:
    return EmbeddedClassifier.load(ClassifierSettings())


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        fake.answer_json.update(urgency="normal", category="other")
        yield fake


def cascade(embedded, server: FakeOpenAI, rule: AskRule, **llm) -> CascadeClassifier:
    settings = LLMSettings(
        base_url=server.base_url, api_key="k", model="gpt-4o-mini", max_attempts=1, timeout_s=5, **llm
    )
    guarded = FallbackClassifier(
        LLMClassifier(settings, CATEGORIES), embedded, CircuitBreaker(failures=100, cooldown_s=1)
    )
    return CascadeClassifier(embedded, guarded, rule)


def asked(server: FakeOpenAI) -> list[str]:
    """The fenced messages the stand-in received, in order."""
    return [request["messages"][-1]["content"] for request in server.requests]


def tree(yaml: str):
    return parse_routing(yaml, "<test>", Vocabulary(tuple(NAMES)))


def test_on_a_labelled_file_the_llm_is_asked_exactly_for_the_flagged_and_the_unsure(embedded, server):
    rows = read_examples(SUPPORT, "urgency").examples[::8]  # 55 messages of every language and kind
    messages = [row.as_message(i) for i, row in enumerate(rows)]
    rule = AskRule(ask_below=0.9, category_below=0.0)
    classifier = cascade(embedded, server, rule)
    results = [classifier.classify(message) for message in messages]

    judged = [embedded.classify(message) for message in messages]
    expected = [
        fence(message)
        for message, own in zip(messages, judged, strict=True)
        if own.urgency in ("high", "urgent") or own.confidence < 0.9
    ]
    assert asked(server) == expected
    assert 0 < len(expected) < len(messages)
    for own, result, message in zip(judged, results, messages, strict=True):
        if fence(message) in expected:
            assert (result.decided_by, result.model, result.urgency) == ("llm", "llm:gpt-4o-mini", "normal")
            assert result.cost_usd > 0
        else:
            assert result == own and result.decided_by == "embedded" and result.cost_usd == 0


def test_a_clearly_ordinary_message_never_reaches_the_llm(embedded, server):
    classifier = cascade(embedded, server, AskRule.from_settings(CascadeSettings(), frozenset()))  # defaults
    for body in (
        "Thanks a lot, the problem is fixed now. Great support!",
        "How do I change the language of my invoices?",
        "Love the new dashboard, keep it up.",
    ):
        result = classifier.classify(SupportMessage(id="m", body=body))
        assert result.decided_by == "embedded" and not result.degraded
    assert server.requests == []


def test_a_message_called_urgent_is_always_asked_and_the_llm_decides(embedded, server):
    classifier = cascade(embedded, server, AskRule(ask_below=0.0, category_below=0.0))
    message = SupportMessage(
        id="m", body="Production is down for all our customers, checkout fails with 500!"
    )
    assert embedded.classify(message).urgency in ("high", "urgent")
    result = classifier.classify(message)
    assert len(server.requests) == 1 and (result.decided_by, result.urgency) == ("llm", "normal")


def test_routed_categories_are_those_a_matcher_singles_out():
    routes = tree(
        """
receivers: [{name: a, console: {}}, {name: b, console: {}}, {name: c, console: {}}]
route:
  receiver: a
  routes:
    - matchers: ['category = billing']
      receiver: b
    - matchers: ['urgency >= high']
      receiver: c
      routes:
        - matchers: ['category in (outage, bug)']
          receiver: c
        - matchers: ['category != account_access']
          receiver: c
"""
    )
    assert routed_categories(routes, NAMES) == {"billing", "outage", "bug", "account_access"}
    assert (
        routed_categories(tree("receivers: [{name: a, console: {}}]\nroute: {receiver: a}"), NAMES) == set()
    )


def test_an_unsure_category_the_routing_file_matches_on_is_asked(embedded, server):
    message = SupportMessage(id="m", body="I have a question about the last invoice and my plan.")
    own = embedded.assess(message)
    routed = frozenset({own.runner_up})  # the file routes on the category the model found second
    classifier = cascade(embedded, server, AskRule(ask_below=0.0, category_below=1.0, routed=routed))
    assert classifier.classify(message).decided_by == "llm" and len(server.requests) == 1
    # the same doubt about categories nobody routes on changes nothing: not asked
    classifier.rule = AskRule(ask_below=0.0, category_below=1.0, routed=frozenset())
    assert classifier.classify(message).decided_by == "embedded" and len(server.requests) == 1


def test_a_reloaded_routing_file_changes_the_categories_asked_about(embedded, server):
    classifier = cascade(embedded, server, AskRule(ask_below=0.5, category_below=0.2))
    assert classifier.rule.routed == frozenset()
    classifier.use_routes(
        tree(
            "receivers: [{name: a, console: {}}, {name: b, console: {}}]\n"
            "route: {receiver: a, routes: [{matchers: ['category =~ \"bill.*|refund\"'], receiver: b}]}"
        )
    )
    assert classifier.rule == AskRule(
        ask_below=0.5, category_below=0.2, routed=frozenset({"billing", "refund"})
    )


def test_an_llm_outage_leaves_the_embedded_answer_degraded(embedded, server):
    server.push(*[Reply(status=500)] * 3)
    classifier = cascade(embedded, server, AskRule(ask_below=1.0, category_below=0.0))
    message = SupportMessage(id="m", body="Our whole team cannot log in since this morning.")
    result = classifier.classify(message)
    own = embedded.classify(message)
    assert result == own.model_copy(update={"degraded": True})
    assert result.decided_by == "embedded" and len(server.requests) == 1
    assert FENCE in server.requests[0]["messages"][-1]["content"]
