"""Issue 25: "I'm on it" and escalation in running workers, through the Slack and Socket Mode stand-ins:
an alert nobody takes goes to the escalation receiver once, `after` its delivery; a taken one never;
a kill -9 of both workers while the escalation is being posted still makes one escalation."""

from __future__ import annotations

import signal
import time

from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_socket import FakeSocketMode, block_actions
from tests.oncall.conftest import ANA, Setup, alert_of, alerted, message
from tests.test_cli import wait_for

AFTER_S = 8
ROUTING = f"""
receivers:
  - {{name: log, console: {{}}}}
  - {{name: oncall, slack: {{channel: "#oncall"}}}}
  - {{name: lead, slack: {{channel: "#lead"}}}}
route:
  receiver: log
  routes:
    - matchers: ['category = outage']
      receiver: oncall
      escalate: {{after: {AFTER_S}s, to: lead}}
"""
DOWN = "The site is DOWN, nothing loads, outage for all of us"


def test_an_alert_nobody_takes_is_escalated_once_at_after_and_a_taken_one_never(kafka_settings, tmp_path):
    with FakeSlack() as slack, FakeSocketMode() as socket_mode:
        slack.socket_mode = socket_mode
        setup = Setup(kafka_settings, tmp_path, ROUTING, slack)
        setup.produce(message("m-taken", DOWN), message("m-free", DOWN))
        with setup.worker():
            socket_mode.wait_connected(timeout_s=120)
            wait_for(lambda: "m-taken" in alerted(slack, "#oncall"), 120, "the alert to take")
            taken = alert_of(slack, "#oncall", "m-taken")
            click = block_actions(taken, "triage_take", ANA)
            envelope = socket_mode.send_interactive(click)
            assert socket_mode.wait_ack(envelope)
            socket_mode.send_interactive(click, envelope_id=envelope)  # Slack sends it again
            assert socket_mode.wait_ack(envelope, count=2)
            wait_for(lambda: "Taken by *ana*" in str(taken["blocks"]), 30, "the alert showing who took it")
            assert "triage_take" not in str(taken["blocks"])  # the button is gone

            wait_for(lambda: alerted(slack, "#lead"), 60, "the escalation")
            time.sleep(AFTER_S + 3)  # long enough for a second escalation, or one of the taken case
            assert alerted(slack, "#lead") == ["m-free"]

        free = alert_of(slack, "#oncall", "m-free")
        [escalation] = slack.messages_in("#lead")
        waited = float(escalation["ts"]) - float(free["ts"])
        assert AFTER_S <= waited <= AFTER_S + 5, waited
        assert f"Not taken for {AFTER_S} s" in str(escalation["blocks"])
        assert any(
            e.get("action_id") == "triage_take" for b in escalation["blocks"] for e in b.get("elements", [])
        )
        assert setup.rows("SELECT subject, who, how FROM acknowledgements") == [
            ("message:m-taken", "ana", "slack")
        ]
        assert sorted(setup.rows("SELECT subject, status FROM escalations")) == [
            ("message:m-free", "sent"),
            ("message:m-taken", "cancelled"),
        ]


class SlowLead(FakeSlack):
    """Posts the first escalation to #lead, then holds the answer back: the worker dies with the post
    made and not recorded, the case an escalation in doubt."""

    def __init__(self) -> None:
        super().__init__()
        self.held = False

    def handle(self, method, params, token, ctype):
        answer = super().handle(method, params, token, ctype)
        if method == "chat.postMessage" and params.get("channel") == "#lead" and not self.held:
            self.held = True
            time.sleep(30)
        return answer


def test_kill_9_of_two_workers_during_an_escalation_escalates_once(kafka_settings, tmp_path, postgres_url):
    with SlowLead() as slack, FakeSocketMode() as socket_mode:
        slack.socket_mode = socket_mode
        setup = Setup(kafka_settings, tmp_path, ROUTING.replace(f"{AFTER_S}s", "2s"), slack, postgres_url)
        setup.produce(*(message(f"m-{n}", DOWN) for n in range(3)))
        workers = [setup.start("first"), setup.start("second")]
        try:
            wait_for(lambda: slack.held, 180, "an escalation posted")
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
        with setup.worker():
            wait_for(lambda: len(alerted(slack, "#lead")) >= 3, 120, "every escalation")
            time.sleep(5)  # a duplicate would come now
        assert sorted(alerted(slack, "#lead")) == ["m-0", "m-1", "m-2"]
        assert sorted(alerted(slack, "#oncall")) == ["m-0", "m-1", "m-2"]
        assert setup.rows("SELECT status, count(*) FROM escalations GROUP BY status") == [("sent", 3)]
        assert setup.rows(
            "SELECT status, count(*) FROM deliveries WHERE receiver = 'lead' GROUP BY status"
        ) == [("sent", 3)]
