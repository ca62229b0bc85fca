"""An outage surge through `triage run`, killed with -9 in the middle: one incident alert, counting every
case once in the end, each case in the store with its delivery, nothing posted twice."""

import json
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import produce
from tests.fakes.slack_server import FakeSlack
from tests.test_cli import TRIAGE, stored_count, triage_env, wait_for

CASES = 40
ROUTING = """\
receivers:
  - {name: log, console: {}}
  - {name: oncall, slack: {channel: "#support-urgent"}}
route:
  receiver: log
  routes:
    - matchers: ['urgency >= high']
      receiver: oncall
      group_by: [category]
      group_wait: 3s
      group_interval: 15s
      group_idle: 10m
"""


def test_a_surge_killed_mid_way_posts_one_incident_that_counts_every_case_once(
    kafka_settings, tmp_path: Path
):
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    lines = [
        json.dumps(
            {
                "id": f"o-{i:02d}",
                "conversation_id": f"conv-{i:02d}",
                "body": f"Outage: the dashboard is down for all of us (ref {i})",
                "customer": {"id": f"cust-{i:02d}", "tier": ("free", "pro", "enterprise")[i % 3]},
            }
        )
        for i in range(CASES)
    ]
    with FakeSlack() as slack:
        slack.rate_limit_per_channel_s = 1.0
        env = triage_env(
            kafka_settings,
            database_url,
            TRIAGE_ROUTING_FILE=str(routing),
            **slack.env(),
        )
        produce(kafka_settings, [line.encode() for line in lines[: CASES // 2]])

        def counted() -> int:
            [alert] = slack.top_level("#support-urgent")
            return int(re.search(r"(\d+) cases", alert["text"])[1]) if "cases" in alert["text"] else 1

        first = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: slack.top_level("#support-urgent"), 60, "the incident alert")
            produce(kafka_settings, [line.encode() for line in lines[CASES // 2 :]])
            wait_for(lambda: stored_count(database_url) > CASES // 2, 60, "the second half to begin")
        finally:
            first.send_signal(signal.SIGKILL)  # mid-surge: cases being grouped, an update due
            first.wait()
        assert counted() < CASES, "the kill came too late to test anything"

        second = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: stored_count(database_url) == CASES, 120, "every case stored")
            wait_for(lambda: counted() == CASES, 60, "the alert to count every case")
            time.sleep(3)  # a duplicate post or reply would arrive now
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)

    [alert] = slack.top_level("#support-urgent")  # one incident alert, never a second
    assert alert["text"] == f"Incident: URGENT outage: {CASES} cases from {CASES} customers"
    replies = slack.replies("#support-urgent", alert["ts"])
    listed = [json.dumps(reply["blocks"]) for reply in replies]
    named = Counter(name for blocks in listed for name in re.findall(r"cust-\d\d", blocks))
    opener_count = CASES - sum(int(re.match(r"(\d+) new", reply["text"])[1]) for reply in replies)
    assert opener_count >= 1 and max(named.values(), default=1) == 1  # each later case listed once
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, incident_id FROM deliveries WHERE receiver = 'oncall'")
        ).all()
        incidents = connection.execute(text("SELECT case_count FROM incidents")).scalars().all()
    engine.dispose()
    assert len(rows) == CASES and Counter(status for status, _ in rows) == {"sent": 1, "grouped": CASES - 1}
    assert {incident for _, incident in rows} == {1} and incidents == [CASES]
