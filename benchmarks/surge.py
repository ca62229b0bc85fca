"""An outage surge through `triage run`: what reaches the on-call channel, and when.

    python benchmarks/surge.py                    # grouped: the routing of docs/routing.md "Grouping"
    python benchmarks/surge.py --no-grouping      # before: one alert per case
    python benchmarks/surge.py --kill             # kill -9 the worker in the middle of the surge
    python benchmarks/surge.py --backend embedded # the default model judges (else a keyword LLM stand-in)

150 customers (each in their own conversation, free/pro/enterprise) write about the same outage within
about 10 s, in five languages; 5 s in, one unrelated urgent case arrives (an account takeover with a
fraudulent transfer scheduled for today). Slack is the stand-in limited like Slack (1 post per second
per channel, then 429 with Retry-After); Zendesk's stand-in takes the helpdesk write-back. The worker
runs as a real `triage run` process configured only by TRIAGE_ variables, on the embedded broker.

It prints the posts the outage cost in #support-urgent (top-level alerts and escalations), the chat.update
calls and thread replies, the count in the incident's final text, how long after its arrival the
unrelated urgent case was posted, when the channel went quiet, and that every case is in the store with
its delivery (sent, or grouped into an incident). This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kafka import KafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.fakes.zendesk_server import FakeZendesk  # noqa: E402
from triage import kafka as transport  # noqa: E402
from triage.broker import TANSU_HEARTBEAT_INTERVAL_MS, TANSU_SESSION_TIMEOUT_MS, EmbeddedBroker  # noqa: E402
from triage.settings import KafkaSettings  # noqa: E402

CHANNEL = "#support-urgent"
ROUTING = """\
receivers:
  - name: log
    console: {}
  - name: helpdesk
    helpdesk: {tags: [ai_triaged], link_problem: true}
  - name: oncall
    slack: {channel: "#support-urgent"}
route:
  receiver: log
  routes:
    - receiver: helpdesk
      continue: true
      group_by: [category]
    - matchers: ['urgency >= high']
      receiver: oncall
      group_by: [category]
      group_wait: 10s
      group_interval: 1m
      group_idle: 30m
      continue: true
"""
OUTAGE = [
    "Your app is down for us, the dashboard returns error 503 and nothing loads.",
    "Outage? The whole site has been down for ten minutes, checkout fails for all our customers.",
    "Nothing loads since 10:02, your service seems to be down for everyone in our company.",
    "La aplicación está caída, no carga nada y nuestros clientes no pueden pagar.",
    "Le service est en panne depuis ce matin, impossible de charger le tableau de bord.",
    "Ihre Plattform ist komplett ausgefallen, seit 10 Uhr lädt gar nichts mehr.",
    "O sistema está fora do ar, nenhum dos nossos usuários consegue acessar.",
    "Is there an outage? We get 503 errors on every page and our shop is offline.",
]
TAKEOVER = (
    "Someone took over my account an hour ago, changed the e-mail and scheduled a transfer of "
    "12,000 EUR to an account I do not know for today. Please block it now!"
)
TIERS = ("free", "pro", "enterprise")


def labels(text: str) -> dict:
    """The LLM stand-in's judgement: the outage is urgent; so is the takeover, in its own category."""
    takeover = "took over my account" in text
    return {
        "urgency": "urgent",
        "sentiment": "negative",
        "category": "security" if takeover else "outage",
        "language": "en",
        "summary": "Account takeover, fraudulent transfer scheduled today" if takeover else "Service down",
        "confidence": 0.9,
    }


def surge() -> list[tuple[float, dict]]:
    """(seconds after the start, message): 150 outage reports over ~10 s, the takeover at 5 s."""
    plan = [
        (
            i * 10.0 / 150,
            {
                "id": f"outage-{i:03d}",
                "conversation_id": f"conv-{i:03d}",
                "body": f"{OUTAGE[i % len(OUTAGE)]} (ref {1000 + i})",
                "channel": "email",
                "customer": {"id": f"cust-{i:03d}", "name": f"Customer {i}", "tier": TIERS[i % 3]},
                "ticket": {"system": "zendesk", "id": 70_000 + i},
            },
        )
        for i in range(150)
    ]
    takeover = {
        "id": "takeover-1",
        "conversation_id": "conv-takeover",
        "body": TAKEOVER,
        "channel": "chat",
        "customer": {"id": "cust-victim", "name": "Ana", "tier": "pro"},
        "ticket": {"system": "zendesk", "id": 79_999},
    }
    return sorted([*plan, (5.0, takeover)], key=lambda item: item[0])


def stored(database: Path) -> int:
    try:
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT count(*) FROM messages").fetchone()[0]
    except sqlite3.Error:
        return 0


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "triage", "run"], env=env, stdout=subprocess.DEVNULL, stderr=log.open("a")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-grouping", action="store_true", help="before: the same tree without group_by")
    parser.add_argument("--kill", action="store_true", help="kill -9 the worker mid-surge, then restart it")
    parser.add_argument("--backend", choices=["llm", "embedded"], default="llm")
    parser.add_argument("--quiet-s", type=float, default=75.0, help="stop when Slack was quiet this long")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="triage-surge-"))
    routing = work / "routing.yaml"
    text = ROUTING
    if args.no_grouping:
        text = re.sub(r"\n\s+group_(by|wait|interval|idle):.*", "", text).replace(", link_problem: true", "")
    routing.write_text(text)
    database = work / "store.db"
    suffix = uuid.uuid4().hex[:6]
    with EmbeddedBroker() as bootstrap, FakeSlack() as slack, FakeZendesk() as zendesk, FakeOpenAI() as llm:
        slack.rate_limit_per_channel_s = 1.0
        llm.responder = lambda request: labels(request["messages"][-1]["content"])
        kafka = KafkaSettings(
            bootstrap_servers=bootstrap,
            input_topic=f"in-{suffix}",
            results_topic=f"out-{suffix}",
            dlq_topic=f"dlq-{suffix}",
            group_id=f"g-{suffix}",
            partitions=6,
        )
        transport.ensure_topics(kafka, [kafka.input_topic, kafka.results_topic, kafka.dlq_topic])
        env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
        env.update(
            TRIAGE_KAFKA__BOOTSTRAP_SERVERS=bootstrap,
            TRIAGE_KAFKA__GROUP_ID=kafka.group_id,
            TRIAGE_KAFKA__INPUT_TOPIC=kafka.input_topic,
            TRIAGE_KAFKA__RESULTS_TOPIC=kafka.results_topic,
            TRIAGE_KAFKA__DLQ_TOPIC=kafka.dlq_topic,
            TRIAGE_KAFKA__SESSION_TIMEOUT_MS=str(TANSU_SESSION_TIMEOUT_MS),
            TRIAGE_KAFKA__HEARTBEAT_INTERVAL_MS=str(TANSU_HEARTBEAT_INTERVAL_MS),
            TRIAGE_DATABASE_URL=f"sqlite:///{database}",
            TRIAGE_ROUTING_FILE=str(routing),
            TRIAGE_CLASSIFIER__BACKEND=args.backend,
            TRIAGE_LLM__BASE_URL=llm.base_url,
            TRIAGE_LLM__API_KEY="stand-in",
            TRIAGE_LLM__MODEL="stand-in",
            **slack.env(),
            **zendesk.env(),
            TRIAGE_HTTP__PORT="0",
        )
        log = work / "worker.log"
        worker = start_worker(env, log)
        deadline = time.monotonic() + 120
        while "partitions assigned" not in log.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(0.1)

        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        plan = surge()
        started = time.time()
        sent_at: dict[str, float] = {}
        killed = False
        for offset, message in plan:
            time.sleep(max(0.0, started + offset - time.time()))
            producer.send(
                kafka.input_topic, key=message["conversation_id"].encode(), value=json.dumps(message).encode()
            )
            sent_at[message["id"]] = time.time()
            if args.kill and not killed and offset >= 5.5:
                producer.flush()
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                killed = True
                at = time.time() - started
                print(f"killed the worker at {at:.1f}s, {stored(database)} cases stored; restarting")
                worker = start_worker(env, log)
        producer.flush()
        producer.close()

        last_activity = time.time()
        seen = 0
        while time.time() - last_activity < args.quiet_s:
            activity = len(slack.messages) + len(getattr(slack, "updates", []))
            if activity != seen:
                seen, last_activity = activity, time.time()
            time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)

        report(slack, zendesk, database, sent_at, started, last_activity, args)
        print(f"worker log: {log}")


def report(slack: FakeSlack, zendesk: FakeZendesk, database: Path, sent_at, started, quiet_at, args) -> None:
    def about(message: dict) -> str:
        return (message.get("metadata") or {}).get("event_payload", {}).get("message_id", "")

    top = slack.top_level(CHANNEL)
    outage_posts = [m for m in top if not about(m).startswith("takeover")]
    takeover_posts = [m for m in top if about(m).startswith("takeover")]
    replies = [m for m in slack.messages_in(CHANNEL) if m["thread_ts"]]
    counts = [int(n) for m in outage_posts for n in re.findall(r"(\d+) cases", m["text"])]
    mode = "before (no grouping)" if args.no_grouping else "grouped"
    print(f"\n{mode}, backend {args.backend}{', worker killed mid-surge' if args.kill else ''}:")
    escalations = sum(m["text"].startswith("Escalated") for m in outage_posts)
    updates = len(getattr(slack, "updates", []))  # the stand-in before grouping did not count them
    print(f"  outage posts in {CHANNEL}: {len(outage_posts)} top-level ({escalations} escalations),")
    print(f"    {len(replies)} thread replies, {updates} chat.update calls, {slack.rejected_429} answers 429")
    if counts:
        latest = max(outage_posts, key=lambda m: m["ts"])["text"]
        print(f"  the incident's final text counts {max(counts)} cases: {latest!r}")
    if takeover_posts:
        delay = float(takeover_posts[0]["ts"]) - sent_at["takeover-1"]
        shown = takeover_posts[0]["text"][:70]
        print(f"  the unrelated urgent case was posted {delay:.1f}s after it arrived ({shown!r})")
    else:
        print("  the unrelated urgent case was NOT posted")
    print(f"  the channel went quiet {quiet_at - started:.0f}s after the surge began")
    with sqlite3.connect(database) as connection:
        messages = connection.execute("SELECT count(*) FROM messages").fetchone()[0]
        statuses = dict(
            connection.execute(
                "SELECT status, count(*) FROM deliveries WHERE receiver = 'oncall' GROUP BY status"
            ).fetchall()
        )
        try:
            incidents = connection.execute("SELECT receiver, group_key, case_count FROM incidents").fetchall()
        except sqlite3.OperationalError:  # a store from before grouping
            incidents = []
    print(f"  store: {messages} of {len(sent_at)} messages; oncall deliveries by status {statuses}")
    print(f"  incidents (receiver, group, cases): {incidents}")
    problems = [t for t in zendesk.tickets.values() if t.get("type") == "problem"]
    linked = sum(1 for t in zendesk.tickets.values() if t.get("type") == "incident")
    print(f"  Zendesk: {len(problems)} problem ticket(s), {linked} tickets linked to one as incidents")


if __name__ == "__main__":
    main()
