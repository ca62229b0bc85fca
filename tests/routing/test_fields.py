"""Routing files and test cases with typos are refused at load, with the line and a suggestion: a route
that can never fire silently stops alerts."""

import pytest

from triage.routing import RoutingError, Vocabulary, parse_routing
from triage.routing.cases import load_cases, run_cases

ROUTING = """\
receivers:
  - name: log
    console: {}
  - name: oncall
    console: {}
route:
  receiver: log
  routes:
    - receiver: oncall
      matchers:
        - 'sentiment = negative'
        - %s
"""


@pytest.mark.parametrize(
    ("matcher", "reason"),
    [
        ("'urgency => high'", "did you mean 'urgency >= high'?"),
        (
            "'urgency = urgnet'",
            "urgency is one of low, normal, high, urgent, not 'urgnet'; did you mean urgent?",
        ),
        ("'sentiment = negatve'", "did you mean negative?"),
        (
            "'customer.teir in (pro, enterprise)'",
            "unknown field 'customer.teir'; did you mean customer.tier?",
        ),
        ("'urgncy >= high'", "unknown field 'urgncy'; did you mean urgency?"),
        ("'category = biling'", "did you mean billing?"),
        ("'category in (billing, refnd)'", "not 'refnd'; did you mean refund?"),
        ("'category =~ \"bil\"'", "matches no category"),
        ("'sentiment >= negative'", "sentiment has no order"),
        ("'confidence > high'", "compares numbers"),
        ("'urgency >= critical'", "urgency is one of"),
        ("'degraded = yes'", "degraded is one of true, false"),
        ("'chanel = email'", "did you mean channel?"),
        ("'tier = pro'", "unknown field 'tier'"),
        # an operator slipped into the value, on any field: the route would never fire
        ("'customer.tier == pro'", "did you mean 'customer.tier = pro'?"),
        ("'customer.tier = = pro'", "did you mean 'customer.tier = pro'?"),
        ("'channel =! email'", "did you mean 'channel != email'?"),
        ("'language == en'", "did you mean 'language = en'?"),
        ("'metadata.region == eu'", "did you mean 'metadata.region = eu'?"),
        ("'confidence => 0.5'", "did you mean 'confidence >= 0.5'?"),
        ("'summary =< x'", "did you mean 'summary <= x'?"),
        ("'ticket.system != = zendesk'", "did you mean 'ticket.system != zendesk'?"),
        ("'urgency == urgent'", "did you mean 'urgency = urgent'?"),
    ],
)
def test_a_matcher_that_can_never_be_true_is_refused_with_its_line(matcher, reason):
    with pytest.raises(RoutingError) as caught:
        parse_routing(ROUTING % matcher, "routing.yaml")
    assert str(caught.value).startswith("routing.yaml:12: route.routes.0.matchers.1: ")
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    "matcher",
    [
        "'urgency >= high'",
        "'category =~ \"bill.*\"'",
        "'metadata.region = eu-west'",  # metadata is free
        "'customer.tier in (pro, enterprise)'",
        "'confidence < 0.6'",
        "'ticket.id = 12345'",
        "'degraded = true'",
        "'language != en'",
        "'subject = \"!important\"'",  # quoted: the value as written, though it starts like an operator
        "'metadata.note != \"<none>\"'",
    ],
)
def test_valid_matchers_load(matcher):
    parse_routing(ROUTING % matcher, "routing.yaml")


def test_categories_are_the_configured_ones():
    team = Vocabulary(categories=("invoices", "tech", "other"))
    parse_routing(ROUTING % "'category = invoices'", "routing.yaml", team)
    with pytest.raises(RoutingError, match="category is one of invoices, tech, other, not 'billing'"):
        parse_routing(ROUTING % "'category = billing'", "routing.yaml", team)


TREE = parse_routing(ROUTING % "'urgency >= high'", "routing.yaml")


def cases_file(tmp_path, text):
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (
            "cases:\n  - name: typo\n    fields: {urgncy: urgent}\n    expect: [oncall]\n",
            "cases.yaml:3: cases.0.fields.urgncy",
            "did you mean urgency?",
        ),
        (
            "cases:\n  - fields:\n      urgency: urgent\n      customer: {teir: pro}\n    expect: [oncall]\n",
            "cases.yaml:4: cases.0.fields.customer.teir",
            "did you mean customer.tier?",
        ),
        (
            "cases:\n  - fields: {urgency: urgnet}\n    expect: [oncall]\n",
            "cases.yaml:2: cases.0.fields.urgency",
            "did you mean urgent?",
        ),
        (
            "cases:\n  - fields: {urgency: urgent}\n    expect:\n      - log\n      - on-call\n",
            "cases.yaml:5: cases.0.expect.1",
            "receiver 'on-call' is not in routing.yaml (log, oncall); did you mean oncall?",
        ),
    ],
)
def test_a_case_with_a_typo_is_an_error_not_a_pass(tmp_path, text, where, reason):
    with pytest.raises(RoutingError) as caught:
        load_cases(cases_file(tmp_path, text), TREE)
    assert str(caught.value).startswith(f"{tmp_path}/{where}: ")
    assert reason in str(caught.value)


def test_valid_cases_run(tmp_path):
    text = (
        "cases:\n  - fields: {urgency: urgent, sentiment: negative, metadata: {x: 1}}\n    expect: [oncall]\n"
    )
    [result] = run_cases(TREE, load_cases(cases_file(tmp_path, text), TREE))
    assert result.passed
