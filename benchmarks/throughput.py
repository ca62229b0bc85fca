"""Throughput of `triage run` against a real broker and an LLM stand-in with a fixed latency.

    python benchmarks/throughput.py                      # LLM backend, 200 ms, the issue's three runs
    python benchmarks/throughput.py --backend embedded   # the offline model, no LLM
    python benchmarks/throughput.py --soak 600           # RSS over a 10-minute stream
    python benchmarks/throughput.py --runs concurrent    # only the configured concurrency

Each run starts fresh topics (6 partitions) and a fresh store, starts the worker(s) as real `triage run`
processes configured only through TRIAGE_ variables, waits until they own the partitions, then sends
the messages (200 conversations, interleaved) at once, as a busy helpdesk would during an outage. It
stops when every message has its record on the results topic and prints messages/s (first send to
last result), end-to-end latency p50/p99 (input record time to results record time, queueing
included), peak RSS of each worker (VmHWM), and that the results kept each conversation's order.

The broker is the embedded one (Tansu) unless --bootstrap is given. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI  # noqa: E402
from triage import kafka as transport  # noqa: E402
from triage.broker import EmbeddedBroker  # noqa: E402
from triage.settings import KafkaSettings  # noqa: E402

# Every message goes to one receiver besides the results topic: a console log (stdout discarded).
ROUTING = "receivers:\n  - {name: log, console: {}}\nroute:\n  receiver: log\n"
PARTITIONS = 6


@dataclass
class Run:
    label: str
    messages: int
    seconds: float
    latencies_ms: list[float]
    peak_rss_mb: list[float]
    cpu_s: float
    in_order: bool

    def line(self, bound: float | None) -> str:
        rate = self.messages / self.seconds
        p50 = statistics.median(self.latencies_ms)
        p99 = statistics.quantiles(self.latencies_ms, n=100)[98] if len(self.latencies_ms) > 1 else p50
        ratio = f" ({rate / bound:.2f} x bound)" if bound else ""
        rss = "/".join(f"{r:.0f}" for r in self.peak_rss_mb)
        order = "kept" if self.in_order else "BROKEN"
        cpu = 1000 * self.cpu_s / self.messages
        return (
            f"{self.label:<34} {self.messages:>6} msgs {rate:>8.1f} msgs/s{ratio:<16} "
            f"p50 {p50:>7.0f} ms  p99 {p99:>7.0f} ms  peak RSS {rss} MB  worker CPU {cpu:.1f} ms/msg  "
            f"order {order}"
        )


def messages(count: int, conversations: int) -> list[tuple[bytes, bytes]]:
    bodies = ["My order has not arrived", "Still waiting, any news?", "The app shows an error on checkout"]
    return [
        (
            f"conv-{n % conversations}".encode(),
            json.dumps(
                {
                    "id": f"m-{n:06d}",
                    "conversation_id": f"conv-{n % conversations}",
                    "body": bodies[n % len(bodies)] + f" (ref {n})",
                    "channel": "chat",
                }
            ).encode(),
        )
        for n in range(count)
    ]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Worker:
    """`triage run` in a subprocess; `assigned` is set once its log says it owns partitions.

    The log goes to a file, not a pipe: a pipe this process drained too slowly would hold the worker up.
    """

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.assigned = threading.Event()
        descriptor, name = tempfile.mkstemp(prefix="triage-worker-", suffix=".log")
        self.log_path = Path(name)
        with os.fdopen(descriptor, "w") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [sys.executable, "-m", "triage", "run"],
                env=env,
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self) -> None:
        with self.log_path.open() as log:
            while self.process.poll() is None:
                start = log.tell()
                line = log.readline()
                if not line.endswith("\n"):  # nothing new, or a line still being written
                    log.seek(start)
                    time.sleep(0.1)
                elif "partitions assigned" in line and "[]" not in line:
                    self.assigned.set()
                elif '"level": "error"' in line or line.startswith("error:"):
                    print("  worker:", line.strip()[:300], file=sys.stderr)

    def stop(self) -> tuple[float, float]:
        """Stop the worker; returns its peak RSS (MB) and the CPU seconds it used."""
        rss, cpu = peak_rss_mb(self.process.pid), cpu_seconds(self.process.pid)
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log_path.unlink(missing_ok=True)
        return rss, cpu


def env_for(
    kafka: KafkaSettings, database_url: str, routing: Path, backend: str, llm_url: str, concurrency: int
):
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRIAGE_")}
    env.update(
        TRIAGE_KAFKA__BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
        TRIAGE_KAFKA__GROUP_ID=kafka.group_id,
        TRIAGE_KAFKA__INPUT_TOPIC=kafka.input_topic,
        TRIAGE_KAFKA__RESULTS_TOPIC=kafka.results_topic,
        TRIAGE_KAFKA__DLQ_TOPIC=kafka.dlq_topic,
        TRIAGE_KAFKA__SESSION_TIMEOUT_MS=str(kafka.session_timeout_ms),
        TRIAGE_KAFKA__HEARTBEAT_INTERVAL_MS=str(kafka.heartbeat_interval_ms),
        TRIAGE_KAFKA__PARTITIONS=str(PARTITIONS),
        TRIAGE_DATABASE_URL=database_url,
        TRIAGE_ROUTING_FILE=str(routing),
        TRIAGE_CLASSIFIER__BACKEND=backend,
        TRIAGE_CLASSIFIER__FALLBACK="rules",
        TRIAGE_LLM__BASE_URL=llm_url,
        TRIAGE_LLM__API_KEY="benchmark",
        TRIAGE_LLM__MODEL="stand-in",
        TRIAGE_WORKER__CONCURRENCY=str(concurrency),
        TRIAGE_LOG__LEVEL="INFO",
        TRIAGE_HTTP__PORT="0",
    )
    return env


def collect_results(
    kafka: KafkaSettings, expected: int, timeout_s: float
) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Once every message has its result: message id -> results record time (ms), and each
    conversation's message ids in the order their results arrived."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    consumer.assign([TopicPartition(kafka.results_topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    seen: dict[str, int] = {}
    order: dict[str, list[str]] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200, max_records=5000).values():
            for record in records:
                payload = json.loads(record.value)
                seen.setdefault(payload["message_id"], record.timestamp)
                order.setdefault(payload["conversation_id"], []).append(payload["message_id"])
    consumer.close()
    if len(seen) < expected:
        raise SystemExit(f"only {len(seen)} of {expected} results within {timeout_s:.0f}s")
    return seen, order


def fresh_topics(args, bootstrap: str, prefix: str) -> tuple[KafkaSettings, str]:
    """Topics (6 partitions) and a consumer group of a run's own; the suffix names them."""
    suffix = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}-{suffix}",
        input_topic=f"{prefix}-in-{suffix}",
        results_topic=f"{prefix}-results-{suffix}",
        dlq_topic=f"{prefix}-dlq-{suffix}",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        partitions=PARTITIONS,
    )
    transport.ensure_topics(kafka, [kafka.input_topic, kafka.results_topic, kafka.dlq_topic])
    return kafka, suffix


def run_once(
    args, bootstrap: str, llm_url: str, label: str, workers: int, concurrency: int, count: int
) -> Run:
    kafka, suffix = fresh_topics(args, bootstrap, "bench")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        routing = tmp_path / "routing.yaml"
        routing.write_text(ROUTING)
        database_url = args.database_url or f"sqlite:///{tmp_path / 'bench.db'}"
        if args.database_url:
            database_url = fresh_postgres(args.database_url, suffix)
        env = env_for(kafka, database_url, routing, args.backend, llm_url, concurrency)
        started: list[Worker] = []
        try:
            for _ in range(workers):
                started.append(Worker(env, tmp_path))
                if not started[-1].assigned.wait(120):
                    raise SystemExit("a worker did not get partitions within 120s")
            time.sleep(2 * args.session_timeout_ms / 1000)  # a second worker's join settles
            cpu_before = sum(cpu_seconds(worker.process.pid) for worker in started)
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
            first_send = time.time()
            for key, value in messages(count, args.conversations):
                producer.send(kafka.input_topic, key=key, value=value)
            producer.flush()
            producer.close()
            seen, order = collect_results(kafka, count, timeout_s=args.timeout)
            stopped = [worker.stop() for worker in started]
        finally:
            for worker in started:  # on any failure: no worker left behind
                if worker.process.poll() is None:
                    worker.process.kill()
        last = max(seen.values()) / 1000
        sent_at = input_timestamps(kafka, count)
        latencies = [seen[mid] - sent_at[mid] for mid in seen]
        in_order = all(ids == sorted(ids) for ids in order.values())
        cpu = sum(cpu for _, cpu in stopped) - cpu_before
        return Run(label, count, last - first_send, latencies, [rss for rss, _ in stopped], cpu, in_order)


def input_timestamps(kafka: KafkaSettings, expected: int) -> dict[str, int]:
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    consumer.assign([TopicPartition(kafka.input_topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    times: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while len(times) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200, max_records=5000).values():
            for record in records:
                times[json.loads(record.value)["id"]] = record.timestamp
    consumer.close()
    return times


def fresh_postgres(server_url: str, suffix: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "triage_bench_{suffix}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/triage_bench_{suffix}"


def soak(args, bootstrap: str, llm_url: str) -> None:
    """A steady stream for --soak seconds; prints the worker's RSS every 30 s."""
    kafka, _ = fresh_topics(args, bootstrap, "soak")
    with tempfile.TemporaryDirectory() as tmp:
        routing = Path(tmp) / "routing.yaml"
        routing.write_text(ROUTING)
        env = env_for(
            kafka, f"sqlite:///{Path(tmp) / 'soak.db'}", routing, args.backend, llm_url, args.concurrency
        )
        worker = Worker(env, Path(tmp))
        worker.assigned.wait(120)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        start, sent, next_report = time.monotonic(), 0, 0.0
        while (elapsed := time.monotonic() - start) < args.soak:
            due = int(elapsed * args.rate)
            for key, value in messages(due - sent, args.conversations):
                producer.send(kafka.input_topic, key=key, value=value.replace(b'"m-', f'"s{sent}-'.encode()))
            sent = due
            if elapsed >= next_report:
                print(
                    f"  t={elapsed:>5.0f}s sent {sent:>7} RSS {rss_mb(worker.process.pid):.0f} MB", flush=True
                )
                next_report += 30
            time.sleep(0.1)
        producer.close()
        print(f"  peak RSS {worker.stop()[0]:.0f} MB over {args.soak:.0f}s at {args.rate} msgs/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", help="an existing broker (default: start the embedded one)")
    parser.add_argument("--backend", choices=["llm", "embedded", "rules"], default="llm")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="the LLM stand-in's fixed latency")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--naive-messages", type=int, default=300, help="messages for the concurrency-1 run (it is slow)"
    )
    parser.add_argument(
        "--runs",
        default="naive,concurrent,two-workers",
        help="which runs, comma-separated: naive, concurrent, two-workers",
    )
    parser.add_argument("--database-url", help="a PostgreSQL server URL (a fresh database per run)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--soak", type=float, help="instead: stream for this many seconds and watch RSS")
    parser.add_argument("--rate", type=float, default=100.0, help="--soak: messages per second")
    parser.add_argument("--session-timeout-ms", type=int, default=2000)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=300)
    args = parser.parse_args()

    with ExitStack() as stack:
        bootstrap = args.bootstrap or stack.enter_context(EmbeddedBroker())
        llm = stack.enter_context(FakeOpenAI())
        latency_s = args.latency_ms / 1000

        def respond(_request: dict) -> dict:
            time.sleep(latency_s)
            return DEFAULT_ANSWER

        llm.responder = respond
        latency = f"LLM latency {args.latency_ms:.0f} ms"
        print(f"broker {bootstrap}, backend {args.backend}, {latency}, cpus {os.cpu_count()}")
        if args.soak:
            soak(args, bootstrap, llm.base_url)
            return
        c, n = args.concurrency, args.messages
        runs = {
            "naive": ("concurrency 1 (the naive loop)", 1, 1, min(args.naive_messages, n)),
            "concurrent": (f"concurrency {c}", 1, c, n),
            "two-workers": (f"2 workers x concurrency {c}", 2, c, n),
        }
        for name in args.runs.split(","):
            if name not in runs:
                raise SystemExit(f"--runs: unknown run {name!r} (naive, concurrent, two-workers)")
            label, workers, concurrency, count = runs[name]
            run = run_once(args, bootstrap, llm.base_url, label, workers, concurrency, count)
            bound = workers * concurrency / latency_s if args.backend == "llm" else None
            print(run.line(bound), flush=True)


if __name__ == "__main__":
    main()
