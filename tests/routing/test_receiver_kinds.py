"""The routing file's receivers beyond Slack: pagerduty, msteams, webhook, email; secrets by env name."""

import pytest

from tests.conftest import REPO
from triage.routing import RoutingError, load_routing, parse_routing
from triage.routing.cases import load_cases, run_cases

TEMPLATE = """receivers:
  - name: log
    console: {}
  - name: x
    %s
route:
  receiver: log
"""


def refused(kind: str) -> str:
    with pytest.raises(RoutingError) as caught:
        parse_routing(TEMPLATE % kind, "routing.yaml")
    message = str(caught.value)
    assert "\n" not in message  # one line
    return message


def test_each_kind_parses_and_says_where_it_sends():
    said = {
        "pagerduty: {routing_key: PAGERDUTY_ROUTING_KEY}": "x (PagerDuty)",
        "msteams: {webhook_url: TEAMS_WEBHOOK_URL}": "x (Teams)",
        "webhook: {url: 'https://ops.example.com/hook', secret: OPS_SECRET}": "x (webhook https://ops.example.com/hook)",
        "email: {to: [oncall@example.com, lead@example.com]}": (
            "x (e-mail to oncall@example.com, lead@example.com)"
        ),
    }
    for kind, description in said.items():
        assert parse_routing(TEMPLATE % kind).receivers["x"].describe() == description


@pytest.mark.parametrize(
    ("kind", "field", "example"),
    [
        (
            "pagerduty: {routing_key: R0123456789abcdef0123456789abcdef}",
            "pagerduty.routing_key",
            "PAGERDUTY_",
        ),
        (
            "msteams: {webhook_url: 'https://acme.webhook.office.com/wf?sig=abc'}",
            "msteams.webhook_url",
            "TEAMS_",
        ),
        (
            "webhook: {url: 'https://ops.example.com/hook', secret: 'hunter2-is-my-secret'}",
            "webhook.secret",
            "WEBHOOK_",
        ),
    ],
)
def test_a_secret_written_in_the_file_is_refused_without_repeating_it(kind, field, example):
    message = refused(kind)
    assert message.startswith(f"routing.yaml:5: receivers.1.{field}: must name the environment variable")
    assert f"(like {example}" in message and "secrets are never written in the routing file" in message
    for secret in ("R0123456789abcdef", "sig=abc", "hunter2"):
        assert secret not in message


def test_a_url_where_a_name_is_expected_is_called_a_url():
    assert "not a URL" in refused("msteams: {webhook_url: 'https://acme.webhook.office.com/x'}")


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (
            "webhook: {url: 'ftp://ops.example.com', secret: S}",
            "receivers.1.webhook.url: 'ftp://ops.example.com' is not an http(s) URL",
        ),
        ("webhook: {url: 'https://ops.example.com'}", "receivers.1.webhook.secret: Field required"),
        (
            "email: {to: oncall@example.com}",
            "receivers.1.email.to: to is a list of addresses, e.g. [oncall@example.com]",
        ),
        ("email: {to: [oncall]}", "receivers.1.email.to: 'oncall' is not an e-mail address"),
        ("email: {to: []}", "receivers.1.email.to: List should have at least 1 item after validation, not 0"),
        (
            "pagerduty: {routing_key: PD_KEY, service_key: PD_V1}",
            "receivers.1.pagerduty.service_key: Extra inputs are not permitted",
        ),
        (
            "pagerduty: {routing_key: PD_KEY}\n    email: {to: [a@example.com]}",
            "receivers.1: receiver 'x' needs exactly one of "
            "console, slack, helpdesk, pagerduty, msteams, webhook, email",
        ),
    ],
)
def test_a_mistake_is_one_line_naming_it(kind, reason):
    assert refused(kind).split(": ", 1)[1] == reason


def test_the_example_with_every_receiver_routes_its_cases():
    tree = load_routing(REPO / "config" / "routing-all-receivers.yaml")
    kinds = {receiver.kind for receiver in tree.receivers.values()}
    assert kinds == {"console", "helpdesk", "slack", "pagerduty", "msteams", "webhook", "email"}
    results = run_cases(tree, load_cases(REPO / "config" / "routing-tests" / "all-receivers.yaml", tree))
    assert results and all(result.passed for result in results)


def test_routing_md_shows_the_example_as_it_is():
    example = (REPO / "config" / "routing-all-receivers.yaml").read_text(encoding="utf-8")
    tree = example[example.index("receivers:") :]
    assert tree in (REPO / "docs" / "routing.md").read_text(encoding="utf-8")
