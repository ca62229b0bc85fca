"""How many webhooks `triage ingest` takes per second, with p50/p99 latency and CPU per webhook.

    python benchmarks/ingest.py                          # 5000 webhooks, 32 at once, bearer token
    python benchmarks/ingest.py --zendesk                # each signed as Zendesk signs (HMAC-SHA256)
    python benchmarks/ingest.py --database-url postgresql://postgres@127.0.0.1:5432/test

Starts a broker (the embedded Tansu unless --bootstrap) and a real `triage ingest` process configured
only by TRIAGE_ variables, then sends a bounded number of webhooks over loopback from `--concurrency`
connections at a time, each webhook on a new connection (as helpdesks send them), every message a new
id in one of 200 conversations. Latency is from connecting to the last byte of the answer; the rate
is webhooks answered 2xx over the wall time of the run. CPU per webhook is the ingest process's user +
system time (from /proc) over the run divided by the webhooks; the broker's and this client's CPU are
printed beside it, since all three share the machine's cores. At the end, the input topic is read to
check that it holds one record per webhook. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import read_topic  # noqa: E402
from triage.broker import EmbeddedBroker, free_port  # noqa: E402

TOKEN = "benchmark-token"
SECRET = "benchmark-signing-secret"
BODY = "Hi, I was charged twice for order #{n} and the tracking page has said 'label created' for a week."


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def requests(count: int, port: int, zendesk: bool, run: str) -> list[bytes]:
    """Every request, ready to write: the HTTP/1.1 request line, headers and a JSON message."""
    prepared = []
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for n in range(count):
        message = {
            "id": f"{run}-{n}",
            "conversation_id": f"{run}-conv-{n % 200}",
            "body": BODY.format(n=n),
            "subject": "Charged twice",
            "channel": "email",
            "customer": {"id": f"cust-{n % 200}", "email": f"customer{n % 200}@example.com"},
            "ticket": {"system": "zendesk", "id": 10_000 + n},
        }
        body = json.dumps(message).encode()
        if zendesk:
            digest = hmac.new(SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()
            auth = (
                f"X-Zendesk-Webhook-Signature: {base64.b64encode(digest).decode()}\r\n"
                f"X-Zendesk-Webhook-Signature-Timestamp: {stamp}\r\n"
            )
        else:
            auth = f"Authorization: Bearer {TOKEN}\r\n"
        head = (
            f"POST /messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"{auth}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        prepared.append(head.encode() + body)
    return prepared


async def send_all(port: int, prepared: list[bytes], concurrency: int) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(prepared)

    async def one_connection_at_a_time() -> None:
        for request in queue:
            started = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            answer = await reader.read()  # the server closes the connection after the answer
            writer.close()
            latencies.append(time.perf_counter() - started)
            status = int(answer.split(b" ", 2)[1]) if answer else 0
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(one_connection_at_a_time() for _ in range(concurrency)))
    return latencies, statuses


def wait_listening(port: int, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"triage ingest exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("triage ingest did not listen in time")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000, help="webhooks to send (bounded)")
    parser.add_argument("--concurrency", type=int, default=32, help="webhooks in flight at once")
    parser.add_argument(
        "--zendesk", action="store_true", help="sign as Zendesk does instead of a bearer token"
    )
    parser.add_argument("--bootstrap", help="a running broker (default: an embedded Tansu)")
    parser.add_argument("--database-url", help="the dedup store (default: a fresh SQLite file)")
    args = parser.parse_args()

    with ExitStack() as stack:
        bootstrap = args.bootstrap
        broker = None
        if not bootstrap:
            broker = EmbeddedBroker()
            bootstrap = broker.start()
            stack.callback(broker.stop)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ingest-bench-")))
        run = uuid.uuid4().hex[:8]
        topic = f"bench-ingest-{run}"
        port = free_port()
        env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
        env.update(
            TRIAGE_KAFKA__BOOTSTRAP_SERVERS=bootstrap,
            TRIAGE_KAFKA__INPUT_TOPIC=topic,
            TRIAGE_DATABASE_URL=args.database_url or f"sqlite:///{workdir / 'ingest.db'}",
            TRIAGE_INGEST__PORT=str(port),
            TRIAGE_INGEST__TOKEN=TOKEN,
            TRIAGE_INGEST__ZENDESK_SIGNING_SECRET=SECRET,
            TRIAGE_LOG__LEVEL="WARNING",
        )
        log = (workdir / "ingest.log").open("w")
        ingest = subprocess.Popen(
            [sys.executable, "-m", "triage", "ingest"], env=env, cwd=workdir, stdout=log, stderr=log
        )
        stack.callback(ingest.wait, 30)
        stack.callback(ingest.terminate)
        wait_listening(port, ingest)

        warmup = requests(200, port, args.zendesk, f"{run}-warm")
        asyncio.run(send_all(port, warmup, args.concurrency))
        prepared = requests(args.requests, port, args.zendesk, run)
        load = os.getloadavg()[0]
        ingest_cpu, client_cpu = cpu_seconds(ingest.pid), time.process_time()
        broker_cpu = cpu_seconds(broker._process.pid) if broker and broker._process else None
        started = time.perf_counter()
        latencies, statuses = asyncio.run(send_all(port, prepared, args.concurrency))
        seconds = time.perf_counter() - started
        ingest_cpu = cpu_seconds(ingest.pid) - ingest_cpu
        client_cpu = time.process_time() - client_cpu
        if broker_cpu is not None and broker and broker._process:
            broker_cpu = cpu_seconds(broker._process.pid) - broker_cpu

        accepted = sum(count for status, count in statuses.items() if 200 <= status < 300)
        records = read_topic(bootstrap, topic, args.requests + 200, timeout_s=60)
        ids = {json.loads(record.value)["id"] for record in records}
        latencies.sort()
        auth = "Zendesk signature" if args.zendesk else "bearer token"
        print(f"{args.requests} webhooks ({auth}), {args.concurrency} at once, each on a new connection")
        print(f"answers: {dict(sorted(statuses.items()))}")
        print(f"rate: {accepted / seconds:.0f} webhooks/s ({seconds:.1f} s)")
        print(
            f"latency: p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms"
        )
        print(f"CPU per webhook: ingest {ingest_cpu / args.requests * 1000:.2f} ms", end="")
        if broker_cpu is not None:
            print(f", broker {broker_cpu / args.requests * 1000:.2f} ms", end="")
        print(f", this client {client_cpu / args.requests * 1000:.2f} ms")
        print(f"records on the input topic: {len(records)} ({len(ids)} distinct ids, 200 of them warm-up)")
        print(f"load average (1 min) at the start: {load:.2f}; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
