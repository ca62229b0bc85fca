import pytest

from tests.conftest import REPO
from triage.message import SupportMessage, Triage
from triage.routing import RoutingError, case_fields, load_routing, parse_routing
from triage.routing.matchers import MatcherError, parse_matcher
from triage.routing.timing import parse_duration

ONE_RECEIVER = "receivers:\n  - name: a\n    console: {}\n"
EXAMPLE = load_routing(REPO / "config" / "routing.yaml")


def case(**fields):
    return {"urgency": "normal", "sentiment": "neutral", "category": "how_to", **fields}


def test_design_example_urgent_negative_enterprise_reaches_three_receivers():
    routed = EXAMPLE.route(case(urgency="urgent", sentiment="negative", **{"customer.tier": "enterprise"}))
    assert routed == ["helpdesk", "oncall", "cx-leads"]


def test_design_example_neutral_how_to_reaches_helpdesk_only():
    assert EXAMPLE.route(case()) == ["helpdesk"]


def test_first_match_stops_unless_continue():
    tree = parse_routing("""
receivers: [{name: a, console: {}}, {name: b, console: {}}, {name: c, console: {}}, {name: root, console: {}}]
route:
  receiver: root
  routes:
    - {matchers: ['urgency >= high'], receiver: a}
    - {matchers: ['urgency = urgent'], receiver: b}
    - {matchers: ['sentiment = negative'], receiver: c, continue: true}
""")
    assert tree.route(case(urgency="urgent")) == ["a"]  # b never tried: a matched without continue
    assert tree.route(case(sentiment="negative")) == ["c"]
    assert tree.route(case(urgency="low")) == ["root"]  # nothing matched: the default receiver


def test_nested_route_delivers_to_parent_when_no_child_matches_and_children_inherit():
    tree = parse_routing("""
receivers: [{name: root, console: {}}, {name: billing, console: {}}, {name: vip, console: {}}]
route:
  receiver: root
  routes:
    - matchers: ['category in (billing, refund)']
      receiver: billing
      routes:
        - matchers: ['customer.tier = enterprise']
          receiver: vip
        - matchers: ['confidence < 0.5']
""")
    assert tree.route(case(category="refund", **{"customer.tier": "enterprise"})) == ["vip"]
    assert tree.route(case(category="billing", confidence=0.3)) == ["billing"]  # inherited receiver
    assert tree.route(case(category="billing", confidence=0.9)) == ["billing"]
    assert tree.route(case(category="bug")) == ["root"]


def test_a_match_carries_every_matcher_on_its_way_from_the_root():
    tree = parse_routing("""
receivers: [{name: root, console: {}}, {name: billing, console: {}}, {name: vip, console: {}}]
route:
  receiver: root
  routes:
    - matchers: ['category in (billing, refund)', 'urgency >= high']
      receiver: billing
      routes:
        - matchers: ['customer.tier = enterprise']
          receiver: vip
""")
    [vip] = tree.matches(case(category="refund", urgency="urgent", **{"customer.tier": "enterprise"}))
    assert (vip.receiver, vip.path) == ("vip", "route.routes[0].routes[0]")
    assert vip.matchers == ("category in (billing, refund)", "urgency >= high", "customer.tier = enterprise")
    [billing] = tree.matches(case(category="billing", urgency="high"))
    assert billing.matchers == ("category in (billing, refund)", "urgency >= high")
    [root] = tree.matches(case())
    assert (root.path, root.matchers) == ("route", ())


@pytest.mark.parametrize(
    ("matcher", "fields", "expected"),
    [
        ("urgency >= high", {"urgency": "urgent"}, True),
        ("urgency >= high", {"urgency": "normal"}, False),
        ("urgency > normal", {"urgency": "high"}, True),
        ("urgency < normal", {"urgency": "low"}, True),
        ("urgency <= low", {"urgency": "normal"}, False),
        ("confidence >= 0.8", {"confidence": 0.85}, True),
        ("confidence >= 0.8", {"confidence": 0.5}, False),
        ("confidence > 0.5", {}, False),
        ("channel != email", {"channel": "chat"}, True),
        ("channel != email", {}, True),
        ("channel = email", {}, False),
        ("category =~ bill.*", {"category": "billing"}, True),
        ("category =~ bill", {"category": "billing"}, False),  # anchored, like Alertmanager
        ("category !~ 'bill.*|refund'", {"category": "refund"}, False),
        ("customer.tier in (enterprise, pro)", {"customer.tier": "pro"}, True),
        ("customer.tier in (enterprise, pro)", {"customer.tier": "free"}, False),
        ('metadata.region = "eu west"', {"metadata.region": "eu west"}, True),
        ("degraded = true", {"degraded": True}, True),
        ("ticket.id = 12345", {"ticket.id": 12345}, True),
    ],
)
def test_matcher_operators(matcher, fields, expected):
    assert parse_matcher(matcher).matches(fields) is expected


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("urgency", "expected FIELD OP VALUE"),
        ("category =~ (", "bad regular expression"),
        ("customer.tier in enterprise", "list in parentheses"),
        ("customer.tier in ()", "empty"),
    ],
)
def test_bad_matchers_say_why(source, reason):
    with pytest.raises(MatcherError, match=reason):
        parse_matcher(source)


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("receivers: [\n", "r.yaml:2", "invalid YAML"),
        ("- just a list\n", "r.yaml:1", "expected a mapping"),
        (
            ONE_RECEIVER + "route:\n  receiver: a\n  routes:\n    - matchers: ['urgency >= hgh']\n",
            "r.yaml:7",
            "urgency is one of",
        ),
        (
            ONE_RECEIVER + "route:\n  receiver: a\n  routes:\n    - receiver: ghost\n",
            "r.yaml:7",
            "'ghost' is not defined",
        ),
        (
            "receivers:\n  - name: a\n    console: {}\n  - name: a\n    console: {}\nroute: {receiver: a}\n",
            "r.yaml:4",
            "used twice",
        ),
        (
            "receivers:\n  - name: a\n    slack: {}\nroute: {receiver: a}\n",
            "r.yaml:3",
            "channel: Field required",
        ),
        (
            "receivers:\n  - name: a\n    console: {}\nroute:\n  receiver: a\n  contniue: true\n",
            "r.yaml:6",
            "Extra inputs are not permitted",
        ),
        ("receivers:\n  - name: a\n    console: {}\nroute: {}\n", "r.yaml:4", "needs a receiver"),
    ],
)
def test_a_bad_routing_file_names_file_line_and_reason(text, where, reason):
    with pytest.raises(RoutingError) as caught:
        parse_routing(text, "r.yaml")
    assert str(caught.value).startswith(where + ":")
    assert reason in str(caught.value)


def test_missing_routing_file_is_a_clear_error(tmp_path):
    with pytest.raises(RoutingError, match="cannot read routing file"):
        load_routing(tmp_path / "nope.yaml")


def test_case_fields_flatten_the_message_and_add_the_triage():
    message = SupportMessage.model_validate(
        {
            "id": "m1",
            "body": "b",
            "channel": "chat",
            "customer": {"tier": "pro"},
            "ticket": {"id": 7},
            "metadata": {"region": "eu"},
        }
    )
    triage = Triage(
        urgency="high",
        sentiment="negative",
        category="bug",
        language="en",
        summary="s",
        confidence=0.7,
        model="rules",
    )
    fields = case_fields(message, triage)
    assert fields["customer.tier"] == "pro" and fields["ticket.id"] == 7 and fields["metadata.region"] == "eu"
    assert fields["urgency"] == "high" and fields["channel"] == "chat" and fields["conversation_id"] == "m1"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("500ms", 0.5),
        ("2w", 1209600),
        ("0s", 0),
    ],
)
def test_durations_are_alertmanagers(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("value", ["5", "-5s", "soon", "10 seconds", "", 10, True, None])
def test_anything_else_is_not_a_duration(value):
    with pytest.raises(ValueError, match="is not a duration like 30s, 15m, 1h30m"):
        parse_duration(value)


def test_a_duration_beyond_a_century_is_refused_not_an_overflow():
    with pytest.raises(ValueError, match="'10000y' is longer than 100y"):
        parse_duration("10000y")
