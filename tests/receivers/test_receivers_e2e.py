"""PagerDuty, Teams, a webhook and e-mail from `triage run`, killed with -9 while PagerDuty holds an
answer back (its event in doubt), then restarted: one PagerDuty alert per case with the same dedup_key,
every case delivered to every receiver, no live mention in the Teams cards or the e-mails."""

import json
import signal
import subprocess
from pathlib import Path

from tests.fakes.pagerduty_server import FakePagerDuty
from tests.fakes.smtp_server import FakeSMTP
from tests.fakes.teams_server import FakeTeams
from tests.fakes.webhook_receiver import FakeWebhookReceiver
from tests.test_cli import TRIAGE, triage_env, wait_for

ROUTING = """
receivers:
  - {name: log, console: {}}
  - {name: pager, pagerduty: {routing_key: E2E_PD_KEY}}
  - {name: teams, msteams: {webhook_url: E2E_TEAMS_URL}}
  - {name: hook, webhook: {url: "%s", secret: E2E_HOOK_SECRET}}
  - {name: mail, email: {to: [oncall@example.com]}}
route:
  receiver: log
  routes:
    - {receiver: pager, continue: true}
    - {receiver: teams, continue: true}
    - {receiver: hook, continue: true}
    - {receiver: mail}
"""
CASES = 6
MENTIONS = "<at>CEO</at> <!channel> @here <@U0CEO>"


def test_every_receiver_once_per_case_across_kill_9(kafka_settings, tmp_path: Path):
    with FakePagerDuty() as pd, FakeTeams() as teams, FakeWebhookReceiver() as hook, FakeSMTP() as smtp:
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING % hook.url)
        source = tmp_path / "messages.jsonl"
        source.write_text(
            "\n".join(
                json.dumps(
                    {"id": f"e2e-{n}", "conversation_id": f"conv-{n}", "body": f"It is down {MENTIONS} ({n})"}
                )
                for n in range(CASES)
            )
            + "\n"
        )
        env = triage_env(
            kafka_settings,
            f"sqlite:///{tmp_path / 'store.db'}",
            TRIAGE_ROUTING_FILE=str(routing),
            TRIAGE_PAGERDUTY__EVENTS_URL=pd.events_url,
            TRIAGE_WORKER__DELIVERY_LEASE_S="3",
            E2E_PD_KEY=next(iter(pd.routing_keys)),
            E2E_TEAMS_URL=teams.webhook_url,
            E2E_HOOK_SECRET=hook.secret,
            **smtp.env(),
        )
        produced = subprocess.run([*TRIAGE, "produce", str(source)], env=env, capture_output=True, text=True)
        assert produced.returncode == 0, produced.stderr

        pd.hold_answers_s = 30.0  # the worker waits for PagerDuty's answer to its second event ...
        first = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: len(pd.events) >= 2, 120, "PagerDuty's first events")
        finally:
            first.send_signal(
                signal.SIGKILL
            )  # ... and dies: PagerDuty has the event, the store does not know
            first.wait()
        pd.hold_answers_s = 0.0
        in_doubt = pd.events[-1]["dedup_key"]

        second = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
        try:
            wait_for(
                lambda: (
                    len(pd.alerts) >= CASES
                    and len(hook.received) >= CASES
                    and len({m["Message-ID"] for m in smtp.messages}) >= CASES
                    and len(teams.cards) >= CASES
                    and len([e for e in pd.events if e["dedup_key"] == in_doubt]) >= 2
                ),
                180,
                "every case at every receiver",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)

    keys = [alert["dedup_key"] for alert in pd.alerts]
    assert sorted(keys) == sorted(f"triage/case/e2e-{n}" for n in range(CASES))  # one alert per case
    assert [e["dedup_key"] for e in pd.events].count(in_doubt) == 2  # the resend kept its key
    assert len(hook.received) == CASES and hook.rejected == 0  # each once; a repeat would be dropped
    assert len({m["Message-ID"] for m in smtp.messages}) == CASES
    for card in teams.cards:
        assert teams.mentions(card) == [] and "<at>" not in json.dumps(card)
    for mail in smtp.messages:
        html = mail.get_body(("html",)).get_content()
        assert "<at>" not in html and "<!channel>" not in html and "&lt;at&gt;CEO" in html
