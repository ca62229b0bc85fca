"""One webhook to a Slack alert, per helpdesk: latency p50/p95 and CPU per webhook, end to end.

    python benchmarks/ingest_to_alert.py                      # 30 webhooks per helpdesk, one at a time
    python benchmarks/ingest_to_alert.py --webhooks 50 --classifier embedded

Starts the embedded broker, the Slack stand-in and the four helpdesk stand-ins (tests/fakes), then a
real `triage ingest` and a real `triage run`, configured only by TRIAGE_ variables, with a routing file
that writes back to the ticket's helpdesk and alerts Slack for urgency >= high. For each helpdesk it
sends the webhook docs/ingest.md gives for it (the template read from the docs and filled as the
helpdesk fills it, authenticated as the docs say), one at a time, each a new ticket; it measures from
the start of the POST to (a) the alert's arrival in the Slack stand-in and (b) the note's arrival in
the helpdesk stand-in. CPU per webhook is the ingest and worker processes' user + system time (from
/proc) over the run divided by the webhooks; the broker's is printed beside them. This is a benchmark,
not a test: every process shares this machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.freshdesk_server import FakeFreshdesk  # noqa: E402
from tests.fakes.gorgias_server import FakeGorgias  # noqa: E402
from tests.fakes.kustomer_server import FakeKustomer  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402
from tests.fakes.zendesk_server import FakeZendesk  # noqa: E402
from tests.helpdesks.conftest import Desk, freshdesk_desk, gorgias_desk, kustomer_desk, zendesk_desk  # noqa: E402
from tests.ingest.test_webhook_to_alert import (  # noqa: E402
    PLACEHOLDERS,
    ROUTING,
    SECRET,
    TOKEN,
    auth_headers,
    fill,
    template,
)
from triage.broker import EmbeddedBroker, free_port  # noqa: E402

SYSTEMS = ("zendesk", "gorgias", "kustomer", "freshdesk")
TEXT = {  # the placeholder that carries the customer's words
    "zendesk": "ticket.latest_comment.value",
    "gorgias": "message.body_text",
    "kustomer": "steps.1.attributes.preview",
    "freshdesk": "ticket.description_text",
}


def placeholders(system: str, n: int, mark: str) -> tuple[dict[str, str], str]:
    """The n-th webhook's placeholder values (a new ticket and message each time) and its ticket id."""
    values = dict(PLACEHOLDERS[system])
    values[TEXT[system]] = f"Checkout is down for all of us ({mark}), every payment fails since 10 minutes!"
    if system == "kustomer":
        ticket = f"{60_000_000 + n:024x}"
        values["steps.1.id"] = f"{70_000_000 + n:024x}"
        values["steps.1.relationships.conversation.data.id"] = ticket
        return values, ticket
    ticket = str(60_000 + n)
    values["ticket.id"] = ticket
    for key in ("ticket.latest_comment.id", "message.id"):
        if key in values:
            values[key] = str(80_000 + n)
    return values, ticket


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait(condition: Any, timeout_s: float, what: str) -> float:
    """Poll every millisecond; the moment (perf_counter) the condition held."""
    deadline = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.001)
    return time.perf_counter()


def has_ticket(desk: Desk, ticket: str) -> bool:
    return (int(ticket) if desk.system == "zendesk" else ticket) in desk.fake.tickets


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--webhooks", type=int, default=30, help="webhooks per helpdesk, one at a time")
    parser.add_argument("--classifier", default="rules", help="TRIAGE_CLASSIFIER__BACKEND (default rules)")
    args = parser.parse_args()

    with ExitStack() as stack:
        broker = EmbeddedBroker()
        bootstrap = broker.start()
        stack.callback(broker.stop)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ingest-to-alert-")))
        slack = stack.enter_context(FakeSlack())
        desks = {
            "zendesk": zendesk_desk(stack.enter_context(FakeZendesk())),
            "gorgias": gorgias_desk(stack.enter_context(FakeGorgias())),
            "kustomer": kustomer_desk(stack.enter_context(FakeKustomer())),
            "freshdesk": freshdesk_desk(stack.enter_context(FakeFreshdesk())),
        }
        (workdir / "routing.yaml").write_text(ROUTING)
        run, port = uuid.uuid4().hex[:8], free_port()
        env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
        env.update(
            TRIAGE_KAFKA__BOOTSTRAP_SERVERS=bootstrap,
            TRIAGE_KAFKA__INPUT_TOPIC=f"bench-in-{run}",
            TRIAGE_KAFKA__RESULTS_TOPIC=f"bench-results-{run}",
            TRIAGE_KAFKA__DLQ_TOPIC=f"bench-dlq-{run}",
            TRIAGE_KAFKA__GROUP_ID=f"bench-{run}",
            TRIAGE_DATABASE_URL=f"sqlite:///{workdir / 'store.db'}",
            TRIAGE_ROUTING_FILE=str(workdir / "routing.yaml"),
            TRIAGE_CLASSIFIER__BACKEND=args.classifier,
            TRIAGE_FEEDBACK__ENABLED="false",
            TRIAGE_INGEST__PORT=str(port),
            TRIAGE_INGEST__TOKEN=TOKEN,
            TRIAGE_INGEST__ZENDESK_SIGNING_SECRET=SECRET,
            TRIAGE_LOG__LEVEL="WARNING",
            **slack.env(),
            **{k: v for desk in desks.values() for k, v in desk.fake.env().items()},
        )
        processes = {}
        for name in ("ingest", "run"):
            log = (workdir / f"{name}.log").open("w")
            process = subprocess.Popen(
                [sys.executable, "-m", "triage", name], env=env, cwd=workdir, stdout=log, stderr=log
            )
            stack.callback(process.wait, 60)
            stack.callback(process.terminate)
            processes[name] = process
        url = f"http://127.0.0.1:{port}"
        client = stack.enter_context(httpx.Client(timeout=30))

        def ready() -> bool:
            try:
                return client.get(f"{url}/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait(ready, 120, "triage ingest")

        def once(system: str, n: int) -> tuple[float, float]:
            mark = f"{run}-{system}-{n}"
            values, ticket = placeholders(system, n, mark)
            body = fill(template(system), values)
            desk = desks[system]
            seen = len(slack.messages)
            started = time.perf_counter()
            answer = client.post(f"{url}/messages", content=body, headers=auth_headers(system, body))
            if answer.status_code != 202:
                raise SystemExit(f"{system}: ingest answered {answer.status_code} {answer.text}")
            alerted = wait(
                lambda: any(mark in json.dumps(m) for m in slack.messages[seen:]), 60, f"{mark} alert"
            )
            noted = wait(lambda: has_ticket(desk, ticket) and desk.notes(ticket), 60, f"{mark} note")
            return alerted - started, noted - started

        for system in SYSTEMS:  # warm-up: first connections, first partitions, the classifier loaded
            once(system, 10_000)
        cpu = {name: cpu_seconds(p.pid) for name, p in processes.items()}
        broker_cpu = cpu_seconds(broker._process.pid) if broker._process else 0.0
        results: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in SYSTEMS}
        for n in range(args.webhooks):
            for system in SYSTEMS:
                alert, note = once(system, n)
                results[system][0].append(alert)
                results[system][1].append(note)
        total = args.webhooks * len(SYSTEMS)
        cpu = {name: cpu_seconds(p.pid) - cpu[name] for name, p in processes.items()}
        broker_cpu = (cpu_seconds(broker._process.pid) if broker._process else 0.0) - broker_cpu

        print(f"{args.webhooks} webhooks per helpdesk, one at a time, classifier {args.classifier}")
        print("helpdesk   | to Slack alert p50 / p95 | to helpdesk note p50 / p95")

        def ms(values: list[float]) -> str:
            return f"{statistics.median(values) * 1000:5.0f} / {percentile(values, 0.95) * 1000:4.0f} ms"

        for system, (alerts, notes) in results.items():
            print(f"{system:<10} | {ms(alerts)}           | {ms(notes)}")
        per = {name: seconds / total * 1000 for name, seconds in cpu.items()}
        print(
            f"CPU per webhook: ingest {per['ingest']:.1f} ms, worker {per['run']:.1f} ms, "
            f"broker {broker_cpu / total * 1000:.1f} ms"
        )
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
