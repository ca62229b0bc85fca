"""Issue 25: silences and inhibition in a running worker, through the Slack and Socket Mode stand-ins:
a silence from the CLI holds matching alerts (stored `silenced` with its id) until it ends; an open
incident holds back the per-case alerts its inhibit rule names; the incident's mute button silences."""

from __future__ import annotations

import time
from datetime import datetime

from tests.fakes.slack_server import FakeSlack
from tests.fakes.slack_socket import FakeSocketMode, block_actions
from tests.oncall.conftest import ANA, Setup, alerted, message
from tests.test_cli import wait_for

DOWN = "The site is DOWN, nothing loads, outage for all of us"
REFUND = "I was charged twice on my invoice, please refund"
SILENCED_ROUTING = """
receivers:
  - {name: log, console: {}}
  - {name: oncall, slack: {channel: "#oncall"}}
route:
  receiver: log
  routes:
    - {matchers: ['category = outage'], receiver: oncall}
"""


def test_a_silence_from_the_cli_holds_matching_alerts_until_it_ends(kafka_settings, tmp_path):
    with FakeSlack() as slack, FakeSocketMode() as socket_mode:
        slack.socket_mode = socket_mode
        setup = Setup(kafka_settings, tmp_path, SILENCED_ROUTING, slack)
        added = setup.triage(
            "silence",
            "add",
            "category = outage",
            "customer.tier != enterprise",
            "--for",
            "15s",
            "--comment",
            "known",
        )
        assert added.returncode == 0, added.stderr
        silence_id = added.stdout.strip()
        [(ends_at,)] = setup.rows(f"SELECT ends_at FROM silences WHERE id = '{silence_id}'")
        setup.produce(message("m-pro", DOWN), message("m-big", DOWN, tier="enterprise"))
        with setup.worker():
            wait_for(lambda: alerted(slack, "#oncall") == ["m-big"], 120, "the enterprise case's alert")
            settled = lambda: setup.delivery("m-pro", "oncall")[0] not in ("pending", "sending")  # noqa: E731
            wait_for(settled, 30, "the silenced delivery")  # claimed (sending), then held
            assert setup.delivery("m-pro", "oncall") == ("silenced", f"silence {silence_id}")

            ends = datetime.fromisoformat(str(ends_at)).timestamp()
            time.sleep(max(0.0, ends - time.time()) + 1)  # the silence ended by itself
            setup.produce(message("m-later", DOWN))
            wait_for(lambda: "m-later" in alerted(slack, "#oncall"), 60, "a new case's alert after the end")
        assert alerted(slack, "#oncall") == ["m-big", "m-later"]  # nothing silenced is replayed
        assert setup.delivery("m-pro", "oncall")[0] == "silenced"


INHIBIT_ROUTING = """
receivers:
  - {name: log, console: {}}
  - {name: oncall, slack: {channel: "#oncall"}}
  - {name: cx, slack: {channel: "#cx"}}
route:
  receiver: log
  routes:
    - matchers: ['category = outage']
      receiver: oncall
      group_by: [category]
      group_wait: 1s
      group_interval: 1s
      continue: true
    - {matchers: ['customer.tier = enterprise'], receiver: cx}
inhibit_rules:
  - source_matchers: ['category = outage']
    target_matchers: ['category = outage']
    equal: [category]
"""


def test_an_open_incident_inhibits_other_receivers_and_its_mute_button_silences(kafka_settings, tmp_path):
    with FakeSlack() as slack, FakeSocketMode() as socket_mode:
        slack.socket_mode = socket_mode
        setup = Setup(kafka_settings, tmp_path, INHIBIT_ROUTING, slack)
        setup.produce(message("m-first", DOWN))
        with setup.worker():
            wait_for(lambda: alerted(slack, "#oncall") == ["m-first"], 120, "the incident's alert")
            [incident_alert] = slack.messages_in("#oncall")
            assert "Mute similar silences `category = outage` for 2 h" in str(incident_alert["blocks"])

            setup.produce(
                message("m-big", DOWN, tier="enterprise"), message("m-bill", REFUND, tier="enterprise")
            )
            wait_for(lambda: alerted(slack, "#cx") == ["m-bill"], 60, "the other category's alert in #cx")
            wait_for(
                lambda: setup.delivery("m-big", "cx")[0] not in ("pending", "sending"),
                30,
                "the inhibited delivery",
            )
            status, detail = setup.delivery("m-big", "cx")
            assert status == "inhibited" and "incident" in detail and "category = outage" in detail
            assert setup.delivery("m-big", "oncall")[0] == "grouped"  # the incident's own case

            socket_mode.wait_connected()
            click = block_actions(incident_alert, "triage_mute", ANA)
            envelope = socket_mode.send_interactive(click)
            assert socket_mode.wait_ack(envelope)
            socket_mode.send_interactive(click, envelope_id=envelope)  # Slack sends it again
            assert socket_mode.wait_ack(envelope, count=2)
            [(silence_id, matchers, by)] = setup.rows("SELECT id, matchers, created_by FROM silences")
            assert (matchers, by) == ('["category = outage"]', "ana")

            setup.produce(message("m-next", DOWN))
            wait_for(
                lambda: setup.delivery("m-next", "oncall")[0] not in ("pending", "sending"),
                60,
                "the muted case",
            )
            assert setup.delivery("m-next", "oncall") == ("silenced", f"silence {silence_id}")
        assert alerted(slack, "#oncall") == ["m-first"]
        assert alerted(slack, "#cx") == ["m-bill"]
