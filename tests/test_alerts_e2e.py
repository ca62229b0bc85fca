"""Issue 5's acceptance run: LLM, Slack (1 post/s per channel, then 429) and Zendesk stand-ins, a real
broker, `triage run` killed with -9 during delivery: every alert once, threaded, escaped, none lost."""

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from tests.conftest import read_topic
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.fakes.zendesk_server import FakeZendesk
from tests.test_cli import TRIAGE, stored_count, triage_env, wait_for
from triage.routing import parse_routing

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
    - {matchers: ['sentiment = negative', 'customer.tier = enterprise'], receiver: cx}
"""
MENTION = "<!channel> <!here> <@U0CEO>"


def labels(text: str) -> dict:
    urgency = "urgent" if "DOWN" in text else "high" if "blocked" in text else "normal"
    return {
        "urgency": urgency,
        "sentiment": "negative" if "angry" in text else "neutral",
        "category": "outage",
        "language": "en",
        "summary": "Customer reports: " + text[-60:],
        "confidence": 0.9,
    }


def answer_from_request(request: dict) -> dict:
    return labels(request["messages"][-1]["content"])


def messages() -> list[dict]:
    """42 messages in 12 conversations: threads, follow-ups, escalations, mentions, enterprise anger."""
    result = []
    for conv in range(12):
        bodies = [
            "question about my invoice",
            "still waiting, I am blocked",
            "angry: it is DOWN for all of us",
            "angry: still DOWN, any update?",
        ]
        if conv % 2:
            bodies = ["how do I export?", "thanks, got it", f"I am angry {MENTION}"]
        for turn, body in enumerate(bodies):
            result.append(
                {
                    "id": f"c{conv}-m{turn}",
                    "conversation_id": f"conv-{conv}",
                    "body": body,
                    "channel": "email",
                    "customer": {"id": f"cust-{conv}", "tier": "enterprise" if conv % 3 == 0 else "pro"},
                    "ticket": {"system": "zendesk", "id": 1000 + conv},
                }
            )
    return result


def expected_alerts(batch: list[dict]) -> set[tuple[str, str]]:
    tree = parse_routing(ROUTING)
    expected = set()
    for message in batch:
        case = {**labels(message["body"]), "customer.tier": message["customer"]["tier"]}
        expected |= {(message["id"], receiver) for receiver in tree.route(case)}
    return expected


def test_alerts_exactly_once_across_kill_9_with_rate_limits(kafka_settings, tmp_path: Path):
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    batch = messages()
    source = tmp_path / "messages.jsonl"
    source.write_text("\n".join(json.dumps(m) for m in batch) + "\n")
    database_url = f"sqlite:///{tmp_path / 'store.db'}"
    with FakeOpenAI() as llm, FakeSlack() as slack, FakeZendesk() as zendesk:
        llm.responder = answer_from_request
        slack.rate_limit_per_channel_s = 1.0
        env = triage_env(
            kafka_settings,
            database_url,
            TRIAGE_ROUTING_FILE=str(routing),
            TRIAGE_CLASSIFIER__BACKEND="llm",
            TRIAGE_CLASSIFIER__FALLBACK="rules",
            TRIAGE_LLM__BASE_URL=llm.base_url,
            TRIAGE_LLM__API_KEY="test",
            TRIAGE_LLM__MODEL="stand-in",
            **slack.env(),
            **zendesk.env(),
            TRIAGE_WORKER__DELIVERY_LEASE_S="3",
        )
        produced = subprocess.run(
            [*TRIAGE, "produce", str(source)], env=env, capture_output=True, text=True, timeout=120
        )
        assert produced.returncode == 0, produced.stderr

        first = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: len(slack.messages) >= 4, 120, "the first Slack alerts")
        finally:
            first.send_signal(signal.SIGKILL)  # mid-delivery: the Slack lanes are waiting out 429s
            first.wait()

        expected = expected_alerts(batch)
        slack_expected = {(m, r) for m, r in expected if r in ("oncall", "cx")}
        assert len(slack.messages) < len(slack_expected), "the kill came too late to test anything"
        log = (tmp_path / "second.log").open("w")
        second = subprocess.Popen([*TRIAGE, "run"], env=env, cwd=tmp_path, stderr=log)
        try:
            wait_for(lambda: stored_count(database_url) == len(batch), 120, "every message stored")
            wait_for(lambda: len(slack.messages) >= len(slack_expected), 180, "every Slack alert")
            helpdesk_expected = {m for m, r in expected if r == "helpdesk"}
            wait_for(
                lambda: sum(len(c) for c in zendesk.comments.values()) >= len(helpdesk_expected),
                60,
                "every helpdesk note",
            )
            time.sleep(2)  # anything extra (a duplicate) would arrive now
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
            log.close()
        assert second.returncode == 0

    posted = [
        (m["metadata"]["event_payload"]["message_id"], "oncall" if m["channel"] == "#oncall" else "cx")
        for m in slack.messages
    ]
    assert Counter(posted).most_common(1)[0][1] == 1, "an alert was posted twice"
    assert set(posted) == slack_expected  # every alert the tree calls for, and no other
    assert slack.rejected_429 > 0  # the rate limit was hit, and cost nothing

    for message in slack.messages:
        text = json.dumps({"text": message["text"], "blocks": message["blocks"]})
        assert "<!channel>" not in text and "<!here>" not in text and "<@U0CEO>" not in text

    top_level = [
        m for m in slack.messages_in("#oncall") if not m.get("thread_ts") or m["thread_ts"] == m["ts"]
    ]
    by_conversation = Counter(m["metadata"]["event_payload"]["conversation_id"] for m in top_level)
    for conversation, count in by_conversation.items():
        urgencies = {labels(m["body"])["urgency"] for m in batch if m["conversation_id"] == conversation}
        # one thread per conversation, plus one top-level escalation when urgency rose from high to urgent
        assert count == (2 if {"high", "urgent"} <= urgencies else 1), conversation
    replies = [m for m in slack.messages_in("#oncall") if m.get("thread_ts") and m["thread_ts"] != m["ts"]]
    assert len(replies) == 6  # the second urgent message of each even conversation went into its thread

    notes = Counter(c["body"].split("[triage delivery ")[1] for cs in zendesk.comments.values() for c in cs)
    assert len(notes) == len(helpdesk_expected) and max(notes.values()) == 1

    def ids(records: list) -> set[str]:
        return {json.loads(r.value)["message_id"] for r in records}

    expected = {m["id"] for m in batch}
    results = read_topic(
        kafka_settings.bootstrap_servers,
        kafka_settings.results_topic,
        len(batch),
        until=lambda records: ids(records) >= expected,
    )
    assert ids(results) == expected and len(results) == len(batch)  # each once, across the kill
