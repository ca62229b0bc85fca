"""Grouping on the real broker: the worker, the Slack and Zendesk stand-ins, short Alertmanager timings.
Cases are judged by the keyword backend ("outage" is urgent, category outage; "hacked" is urgent,
category security; "error" is high, category bug), so each test knows its groups."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import produce
from tests.fakes.slack_server import FakeSlack
from tests.fakes.zendesk_server import FakeZendesk
from triage.settings import Settings
from triage.worker import Worker

CHANNEL = "#support-urgent"


def routing(tmp_path: Path, route: str, receivers: str = "") -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(
        "receivers:\n  - {name: log, console: {}}\n"
        f"  - {{name: oncall, slack: {{channel: '{CHANNEL}'}}}}\n{receivers}"
        f"route:\n  receiver: log\n  routes:\n{route}"
    )
    return path


def case(i: int, body: str, customer: str | None = None, tier: str = "pro", **fields) -> bytes:
    who = customer or f"cust-{i}"
    value = {
        "id": f"m-{i}",
        "conversation_id": f"conv-{who}",
        "body": body,
        "customer": {"id": who, "tier": tier},
    }
    return json.dumps({**value, **fields}).encode()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def running(settings: Settings, slack: FakeSlack, routing_file: Path) -> Iterator[Worker]:
    settings.routing_file = routing_file
    settings.slack.token, settings.slack.base_url = "xoxb-test", slack.base_url
    worker = Worker.from_settings(settings)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=60)


def deliveries(settings: Settings) -> list[dict]:
    engine = create_engine(settings.database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT message_id, receiver, status, incident_id, incident_seq FROM deliveries ORDER BY id")
        )
        found = [dict(row._mapping) for row in rows]
    engine.dispose()
    return [row for row in found if row["receiver"] != "_results"]


GROUPED = """\
    - matchers: ['urgency >= high']
      receiver: oncall
      group_by: [category]
      group_wait: 2s
      group_interval: 3s
      group_idle: 1m
"""


def test_group_wait_gathers_a_burst_into_one_alert(settings: Settings, slack: FakeSlack, tmp_path: Path):
    with running(settings, slack, routing(tmp_path, GROUPED)):
        started = time.time()
        produce(settings.kafka, [case(i, f"Outage: checkout is down for us ({i})") for i in range(5)])
        wait_for(lambda: slack.top_level(CHANNEL), 30, "the incident alert")
        time.sleep(1.0)  # nothing else arrives
    [alert] = slack.top_level(CHANNEL)
    assert float(alert["ts"]) - started >= 2.0  # posted after group_wait
    assert alert["text"] == "Incident: URGENT outage: 5 cases from 5 customers"
    assert "5 cases from 5 customers" in json.dumps(alert["blocks"]) and "5 pro" in json.dumps(
        alert["blocks"]
    )
    rows = deliveries(settings)
    assert sorted(row["status"] for row in rows) == ["grouped"] * 4 + ["sent"]
    assert {row["incident_id"] for row in rows} == {rows[0]["incident_id"]}  # one incident, every case in it
    assert sorted(row["incident_seq"] for row in rows) == [1, 2, 3, 4, 5]


def test_group_interval_throttles_updates_and_lists_new_cases_in_the_thread(
    settings: Settings, slack: FakeSlack, tmp_path: Path
):
    with running(settings, slack, routing(tmp_path, GROUPED)):
        produce(settings.kafka, [case(0, "Outage: checkout is down")])
        wait_for(lambda: slack.top_level(CHANNEL), 30, "the incident alert")
        produce(settings.kafka, [case(i, f"Outage: checkout is down ({i})") for i in range(1, 4)])
        wait_for(lambda: slack.updates, 30, "the first update")
        produce(settings.kafka, [case(i, f"Outage: checkout still down ({i})") for i in range(4, 6)])
        wait_for(lambda: len(slack.updates) >= 2, 30, "the second update")
        time.sleep(1.0)
    [alert] = slack.top_level(CHANNEL)
    first, second = slack.updates[:2]
    assert len(slack.updates) == 2
    assert second["at"] - first["at"] >= 3.0 - 0.1  # at most one update per group_interval
    assert alert["text"] == "Incident: URGENT outage: 6 cases from 6 customers"  # updated in place
    replies = slack.replies(CHANNEL, alert["ts"])
    assert [reply["text"] for reply in replies] == [
        "3 new cases in this incident",
        "2 new cases in this incident",
    ]
    assert "cust-5" in json.dumps(replies[1]["blocks"]) and "cust-1" not in json.dumps(replies[1]["blocks"])


def test_group_idle_closes_an_incident_and_the_next_case_opens_another(
    settings: Settings, slack: FakeSlack, tmp_path: Path
):
    route = GROUPED.replace("group_idle: 1m", "group_idle: 2s").replace("group_wait: 2s", "group_wait: 0s")
    with running(settings, slack, routing(tmp_path, route)):
        produce(settings.kafka, [case(0, "Outage: checkout is down")])
        wait_for(lambda: slack.top_level(CHANNEL), 30, "the first incident")
        produce(settings.kafka, [case(1, "Outage: checkout is down again")])  # within group_idle: joins
        wait_for(
            lambda: len(deliveries(settings)) == 2 and deliveries(settings)[1]["status"] != "pending",
            30,
            "join",
        )
        time.sleep(3.0)  # idle for longer than group_idle
        produce(settings.kafka, [case(2, "Outage: checkout is down once more")])
        wait_for(lambda: len(slack.top_level(CHANNEL)) == 2, 30, "a new incident")
    first, second, third = deliveries(settings)
    assert first["incident_id"] == second["incident_id"] != third["incident_id"]
    assert (second["status"], third["status"]) == ("grouped", "sent")


def test_similar_splits_two_different_outages_in_one_category(settings: Settings, slack: FakeSlack, tmp_path):
    similar = "group_by: [category, similar]\n      group_similarity: 0.6"
    route = GROUPED.replace("group_by: [category]", similar)
    payments = [
        "Outage: checkout is down, every card payment fails with error 500",
        "Outage: payments are down, none of our customers can pay at checkout",
        "Outage: checkout is down and all card payments get declined",
    ]
    logins = [
        "Outage: nobody on our team can log in, the sign-in page is down",
        "Outage: login is down, all our users are locked out of their accounts",
        "Outage: the sign in page is down, none of us can log in",
    ]
    messages = [case(i, body) for i, body in enumerate(payments + logins)]
    with running(settings, slack, routing(tmp_path, route)):
        produce(settings.kafka, messages)
        wait_for(lambda: len(slack.top_level(CHANNEL)) >= 2, 60, "two incident alerts")
        time.sleep(1.5)
    alerts = slack.top_level(CHANNEL)
    assert (
        sorted(alert["text"] for alert in alerts) == ["Incident: URGENT outage: 3 cases from 3 customers"] * 2
    )
    incident_of = {row["message_id"]: row["incident_id"] for row in deliveries(settings)}
    assert len({incident_of[f"m-{i}"] for i in range(3)}) == 1
    assert len({incident_of[f"m-{i}"] for i in range(3, 6)}) == 1
    assert incident_of["m-0"] != incident_of["m-3"]


def test_a_more_urgent_case_escalates_at_once(settings: Settings, slack: FakeSlack, tmp_path: Path):
    with running(settings, slack, routing(tmp_path, GROUPED.replace("category", "customer.tier"))):
        produce(settings.kafka, [case(0, "The export shows an error", tier="enterprise")])  # high
        wait_for(lambda: slack.top_level(CHANNEL), 30, "the alert")
        produce(settings.kafka, [case(1, "Outage: nothing loads", tier="enterprise")])  # urgent
        wait_for(lambda: len(slack.top_level(CHANNEL)) == 2, 20, "the escalation")
        produce(
            settings.kafka, [case(2, "Outage: still nothing loads", tier="enterprise")]
        )  # no 2nd escalation
        wait_for(
            lambda: len(deliveries(settings)) == 3 and deliveries(settings)[2]["status"] == "grouped", 30, "3"
        )
    first, escalation = slack.top_level(CHANNEL)
    assert first["text"].startswith("HIGH") and escalation["text"].startswith("Escalated incident: URGENT")


PRIORITY = """\
    - matchers: ['urgency = urgent']
      receiver: oncall
    - receiver: cx
"""


def test_under_a_rate_limit_the_most_urgent_alert_goes_first_and_a_shared_channel_is_one_lane(
    settings: Settings, slack: FakeSlack, tmp_path: Path
):
    slack.rate_limit_per_channel_s = 1.0
    receivers = f"  - {{name: cx, slack: {{channel: '{CHANNEL}'}}}}\n"  # the same channel as oncall
    with running(settings, slack, routing(tmp_path, PRIORITY, receivers)) as worker:
        produce(
            settings.kafka, [case(i, f"The report shows an error ({i})") for i in range(6)]
        )  # high, to cx
        wait_for(lambda: slack.messages_in(CHANNEL), 30, "the first alert")
        produce(settings.kafka, [case(9, "Account hacked, a transfer I did not make is scheduled")])  # urgent
        wait_for(lambda: len(slack.messages_in(CHANNEL)) == 7, 60, "every alert")
        lanes = set(worker.outbox._lanes)
    order = [m["metadata"]["event_payload"]["message_id"] for m in slack.messages_in(CHANNEL)]
    assert order.index("m-9") <= 2, order  # behind at most the alert in hand and the one waiting out a 429
    assert f"slack:{CHANNEL}" in lanes and "cx" not in lanes and "oncall" not in lanes
    assert slack.rejected_429 > 0


def test_a_grouped_helpdesk_receiver_links_tickets_to_one_problem(
    settings: Settings, slack: FakeSlack, zendesk: FakeZendesk, tmp_path: Path
):
    settings.helpdesk.base_url, settings.helpdesk.email = zendesk.base_url, zendesk.email
    settings.helpdesk.api_token = zendesk.api_token
    receivers = "  - {name: desk, helpdesk: {tags: [ai_triaged], link_problem: true}}\n"
    route = "    - {matchers: ['urgency >= high'], receiver: desk, group_by: [category], group_wait: 1s}\n"
    messages = [case(i, f"Outage: checkout is down ({i})", ticket={"id": 500 + i}) for i in range(3)]
    with running(settings, slack, routing(tmp_path, route, receivers)):
        produce(settings.kafka, [*messages, case(7, "Outage: still down, no ticket")])
        wait_for(
            lambda: all(zendesk.tickets.get(500 + i, {}).get("problem_id") for i in range(3)), 30, "links"
        )
    [problem] = [t for t in zendesk.tickets.values() if t.get("type") == "problem"]
    assert "customers report: outage" in problem["subject"]
    for i in range(3):
        ticket = zendesk.tickets[500 + i]
        assert (ticket["type"], ticket["problem_id"]) == ("incident", problem["id"])
        assert "triage_urgent" in ticket["tags"]  # each ticket still got its own update
    created = [r for r in zendesk.requests if r["method"] == "POST"]
    assert len(created) == 1  # one problem ticket


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (
            "    - {receiver: oncall, group_by: [categroy]}\n",
            "unknown field 'categroy'; did you mean category?",
        ),
        ("    - {receiver: oncall, group_by: [category], group_wait: soon}\n", "'soon' is not a duration"),
        ("    - {receiver: oncall, group_by: [category], group_wait: -5}\n", "-5 is not a duration"),
        ("    - {receiver: oncall, group_by: [category], group_wait: 10}\n", "10 is not a duration"),
        ("    - {receiver: oncall, group_by: [category], group_idle: true}\n", "True is not a duration"),
        ("    - {receiver: oncall, group_by: [category], group_interval: 0s}\n", "must be longer than 0s"),
        ("    - {receiver: oncall, group_by: [similar], group_similarity: 2}\n", "less than or equal to 1"),
    ],
)
def test_a_bad_grouping_stops_the_start_with_its_file_and_line(settings: Settings, tmp_path, route, reason):
    settings.routing_file = routing(tmp_path, route)
    from triage.routing import RoutingError

    with pytest.raises(RoutingError) as caught:
        Worker.from_settings(settings)
    assert str(caught.value).startswith(f"{settings.routing_file}:7: route.routes.0.group_")
    assert reason in str(caught.value)


def test_routes_test_and_check_show_the_group_a_case_would_join(tmp_path: Path):
    from typer.testing import CliRunner

    from triage.cli import app

    path = routing(tmp_path, GROUPED)
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n  - name: an outage\n    fields: {urgency: urgent, category: outage}\n    expect: [oncall]\n"
    )
    tested = CliRunner().invoke(app, ["routes", "test", str(cases), "--routing", str(path), "--explain"])
    assert tested.exit_code == 0, tested.output
    assert "oncall groups it: route.routes[0] category=outage" in tested.output
    assert "delivers to oncall, group category=outage" in tested.output
    checked = CliRunner().invoke(app, ["routes", "check", str(path)])
    assert checked.exit_code == 0 and "group by category" in checked.output
