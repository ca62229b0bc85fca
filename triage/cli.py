"""The `triage` command. Thin: parse arguments, call the modules, turn known failures into one line."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from kafka.errors import KafkaError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree as RichTree

from triage import kafka
from triage.broker import (
    TANSU_HEARTBEAT_INTERVAL_MS,
    TANSU_SESSION_TIMEOUT_MS,
    EmbeddedBroker,
    EmbeddedBrokerError,
    port_is_free,
)
from triage.classify.base import BackendUnavailable, LLMUnavailable, make_classifier
from triage.classify.categories import CategoriesError
from triage.classify.evaluate import EvalDataError, LabelledFile, Task, evaluate, read_examples
from triage.cli_help import Group
from triage.dlq_cli import dlq_app
from triage.forget_cli import forget as forget_command
from triage.ingest.command import ingest as ingest_command
from triage.input.cli import input_app, schema_app
from triage.input.mapping import MappingError
from triage.input.registry import RegistryError
from triage.kafka import BrokerUnavailable
from triage.message import InvalidMessage, parse_message
from triage.oncall.cli import silence_app
from triage.oncall.preview import StoreView, preview
from triage.ops.http import OpsPortError, OpsServer
from triage.ops.logging import error_line, setup_logging, stop_logging, wants_json
from triage.produce import ProduceError, end_offset, read_lines, with_new_ids
from triage.receivers.email import EmailConfigError
from triage.receivers.helpdesk import HelpdeskConfigError
from triage.receivers.slack import SlackConfigError
from triage.report.command import report as report_command
from triage.routing import RESULTS_RECEIVER, RoutingError, RoutingTree, Vocabulary, load_routing
from triage.routing.cases import diff_trees, flatten, load_cases, run_cases, stored_case
from triage.routing.timing import parse_duration
from triage.routing.tree import Route
from triage.settings import Settings, SettingsError, load_settings
from triage.store import Store, StoreUnavailable
from triage.warehouse.cli import warehouse_app
from triage.worker import Stats, Worker

routes_app = typer.Typer(help="Check and test a routing file before it goes live.", no_args_is_help=True)
app = typer.Typer(
    cls=Group,
    help="Triage customer-support messages from Kafka and route what matters.",
    no_args_is_help=True,
)
app.add_typer(routes_app, name="routes")
app.add_typer(dlq_app, name="dlq")
app.add_typer(input_app, name="input")
app.add_typer(schema_app, name="schema")

app.add_typer(silence_app, name="silence")
app.command(name="report")(report_command)
app.add_typer(warehouse_app, name="warehouse")
app.command(name="ingest")(ingest_command)
app.command(name="forget")(forget_command)
console = Console(width=None if sys.stdout.isatty() else 160)  # piped: no terminal width to fit
err = Console(stderr=True)


class EmptyMessage(Exception):
    def __init__(self) -> None:
        super().__init__("the message is empty")


KNOWN_FAILURES = (
    EmptyMessage,
    InvalidMessage,
    SettingsError,
    BrokerUnavailable,
    StoreUnavailable,
    RoutingError,
    BackendUnavailable,
    EmbeddedBrokerError,
    EvalDataError,
    CategoriesError,
    LLMUnavailable,
    SlackConfigError,
    HelpdeskConfigError,
    EmailConfigError,
    OpsPortError,
    MappingError,
    RegistryError,
    ProduceError,
)
URGENCY_STYLE = {"urgent": "bold red", "high": "red", "normal": "yellow", "low": "green"}
SENTIMENT_STYLE = {"negative": "red", "neutral": "white", "positive": "green"}
LABELLED_CSV = "columns text,label (or text,<task>), and subject if the messages have one"
MAX_CONFUSION_COLUMNS = 12  # more do not fit a terminal; `--json` has the whole matrix
DEMO_DATABASE = Path("triage-demo.db")
DEMO_SAMPLES = Path(__file__).parent / "defaults" / "messages.jsonl"  # = config/samples/messages.jsonl
# The demo sends these too, to show that malformed input ends in the dead-letter topic with a reason.
DEMO_BAD_RECORDS = (b'{"id": "demo-bad-1", "body": ', b'{"id": "demo-bad-2", "channel": "email"}')


@contextmanager
def one_line_errors(logged: bool = False) -> Iterator[None]:
    """Known failures print `error: <what and where>` and exit 2, not a stack trace; `logged` (the
    worker): in the log's format, so that a JSON log stays JSON."""
    try:
        yield
    except KNOWN_FAILURES as error:
        stop_logging()  # what was logged before the failure comes first
        line = error_line(str(error)) if logged else ""
        if line.startswith("{"):
            print(line, file=sys.stderr, flush=True)
        else:
            err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


Backend = Literal["rules", "embedded", "llm", "cascade"]


def _settings() -> Settings:
    settings = load_settings()
    setup_logging(settings.log.level, wants_json(settings.log.format))
    return settings


@app.command()
def run() -> None:
    """Run the worker until SIGTERM or Ctrl-C (a second signal exits at once)."""
    with one_line_errors(logged=True):
        settings = _settings()
        worker = Worker.from_settings(settings)

    def on_signal(signum: int, _frame: object) -> None:
        if worker.stopping:
            os._exit(128 + signum)  # second signal: leave now; only finished work was committed
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: worker.routing.request())
    with one_line_errors(logged=True):
        ops = OpsServer(settings.http.port, worker.alive, worker.readiness()).start()
        try:
            worker.run()
        finally:
            ops.stop()


@app.command()
def produce(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON Lines, one message a line")],
    topic: Annotated[str | None, typer.Option(help="default: the input topic")] = None,
    new_ids: Annotated[
        bool,
        typer.Option("--new-ids", help="append -r<N> to each id and conversation_id, to send a file again"),
    ] = False,
    run: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="N",
            help="with --new-ids: N (default: the topic's end offset, so each run differs)",
        ),
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="send lines as they are, JSON or not (to try the dead-letter path)")
    ] = False,
) -> None:
    """Send each line of FILE to the input topic, keyed by conversation_id.

    Every line must be a JSON object (checked before anything is sent) unless --raw."""
    with one_line_errors():
        if raw and (new_ids or run is not None):
            raise ProduceError("--raw sends lines as they are: it cannot give them --new-ids")
        lines = read_lines(file, raw)
        settings = load_settings()
        setup_logging(brief=True)
        kafka.announce(settings.kafka)
        topic = topic or settings.kafka.input_topic
        renamed = ""
        if new_ids or run is not None:
            run = end_offset(settings.kafka, topic) if run is None else run
            lines = with_new_ids(lines, run)
            renamed = f" with new ids (-r{run})"
        sent = _produce_lines(settings, lines, topic)
    console.print(f"sent {sent} records to {topic}{renamed}", highlight=False)


def _produce_lines(settings: Settings, lines: list[bytes], topic: str) -> int:
    if settings.kafka.create_topics:
        kafka.ensure_topics(settings.kafka, [topic])
    producer = kafka.make_producer(settings.kafka)
    futures = [
        producer.send(topic, key=_conversation_key(line), value=line) for line in lines if line.strip()
    ]
    producer.flush()
    try:
        for future in futures:
            future.get(timeout=30)
    except KafkaError as error:
        raise BrokerUnavailable(f"sending to {topic}: {error}") from error
    finally:
        producer.close()
    return len(futures)


def _conversation_key(line: bytes) -> bytes | None:
    """conversation_id (or id) of a JSON line; None for a line that is not a JSON object."""
    try:
        document = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    key = document.get("conversation_id") or document.get("id")
    return str(key).encode("utf-8") if key else None


@app.command()
def demo(
    samples: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="JSON Lines; default: the 30 packaged samples")
    ] = DEMO_SAMPLES,
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 120.0,
) -> None:
    """Triage the sample messages end to end: broker (embedded unless configured), store, routing."""
    with one_line_errors():
        settings = load_settings()
        setup_logging(brief=True)
        own_store = "database_url" not in settings.model_fields_set
        if own_store:
            DEMO_DATABASE.unlink(missing_ok=True)
            settings.database_url = f"sqlite:///{DEMO_DATABASE}"
        with _demo_broker(settings):
            stats, ids = _run_demo(settings, samples, timeout)
        _show_demo(settings, stats, ids)
    report = f"{invoked_as()} report"
    if own_store:
        report = f"TRIAGE_DATABASE_URL={shlex.quote(settings.database_url)} {report}"
    console.print("The CX health report of this run (writes report.html):")
    console.print(f"  {report}", markup=False, highlight=False, soft_wrap=True)


def invoked_as() -> str:
    """How to run this same `triage` from this shell: `triage` when PATH finds this one, else its path
    (right after `pip install` into a virtualenv that is not active, PATH finds none)."""
    if Path(sys.argv[0]).name == "__main__.py":  # python -m triage
        return f"{shlex.quote(sys.executable)} -m triage"
    script = os.path.abspath(sys.argv[0])
    found = shutil.which("triage")
    if found and os.path.realpath(found) == os.path.realpath(script):
        return "triage"
    return shlex.quote(script)


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 to listen on")] = 9092,
) -> None:
    """Run the embedded Kafka-compatible broker in the foreground, with the topics made.

    To try `triage run` and `triage produce` locally without Kafka or Docker. In memory: Ctrl-C loses
    it all."""
    with one_line_errors():
        settings = load_settings()
        if not port_is_free(port):
            raise EmbeddedBrokerError(f"port {port} is in use; choose another with --port")
        with EmbeddedBroker(port) as bootstrap:
            kafka_settings = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})
            topics = [kafka_settings.input_topic, kafka_settings.results_topic, kafka_settings.dlq_topic]
            kafka.ensure_topics(kafka_settings, topics)
            console.print(
                f"Embedded broker (Tansu) on {bootstrap}, topics {', '.join(topics)}; in memory: "
                "stopping it loses every record. In another terminal:",
                highlight=False,
                soft_wrap=True,
            )
            exports = (
                f"export TRIAGE_KAFKA__BOOTSTRAP_SERVERS={bootstrap} "
                f"TRIAGE_KAFKA__SESSION_TIMEOUT_MS={TANSU_SESSION_TIMEOUT_MS} "
                f"TRIAGE_KAFKA__HEARTBEAT_INTERVAL_MS={TANSU_HEARTBEAT_INTERVAL_MS}"
            )
            console.print(f"  {exports}", markup=False, highlight=False, soft_wrap=True)
            console.print("Ctrl-C stops it.", highlight=False)
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda _signum, _frame: stop.set())
            stop.wait()


@contextmanager
def _demo_broker(settings: Settings) -> Iterator[None]:
    if settings.kafka.bootstrap_servers:
        yield
        return
    with console.status("starting the embedded broker (Tansu)"), EmbeddedBroker() as bootstrap:
        settings.kafka = settings.kafka.model_copy(
            update={
                "bootstrap_servers": bootstrap,
                "session_timeout_ms": TANSU_SESSION_TIMEOUT_MS,
                "heartbeat_interval_ms": TANSU_HEARTBEAT_INTERVAL_MS,
            }
        )
        yield


def _run_demo(settings: Settings, samples: Path, timeout: float) -> tuple[Stats, list[str]]:
    lines = [line for line in samples.read_bytes().splitlines() if line.strip()]
    ids = [json.loads(line)["id"] for line in lines]
    worker = Worker.from_settings(settings)
    sent = _produce_lines(settings, [*lines, *DEMO_BAD_RECORDS], settings.kafka.input_topic)
    deadline = time.monotonic() + timeout
    with console.status(f"triaging {sent} records from {settings.kafka.bootstrap_servers}"):
        stats = worker.run(until=lambda s: s.handled >= sent or time.monotonic() > deadline)
    if stats.handled < sent:
        raise BrokerUnavailable(f"only {stats.handled} of {sent} records were handled within {timeout:.0f}s")
    return stats, ids


def _show_demo(settings: Settings, stats: Stats, ids: list[str]) -> None:
    store = Store(settings.database_url)
    results = store.results(ids)
    rows = [
        (
            message.id,
            message.channel or "",
            message.customer_tier or "",
            result.urgency,
            result.sentiment,
            result.category,
            ", ".join(result.receivers),
            result.summary,
        )
        for message, result in results
    ]
    table = Table(title="Triaged messages")
    for index, column in enumerate(("message", "channel", "tier", "urgency", "sentiment", "category")):
        kept = column in ("message", "urgency", "sentiment", "category")  # a narrow console cuts the rest
        width = max([len(column)] + [len(row[index]) for row in rows]) if kept else None
        table.add_column(column, no_wrap=True, min_width=width)
    table.add_column("receivers")
    table.add_column("summary", no_wrap=True, overflow="ellipsis", max_width=60, min_width=10)
    for *fields, urgency, sentiment, category, receivers, summary in rows:
        urgency = f"[{URGENCY_STYLE[urgency]}]{urgency}[/]"
        sentiment = f"[{SENTIMENT_STYLE[sentiment]}]{sentiment}[/]"
        table.add_row(*fields, urgency, sentiment, category, receivers, summary)
    console.print(table)
    models = sorted({result.model for _, result in results})
    console.print(f"classified by {', '.join(models)}")
    summary = Table(title="Summary")
    summary.add_column("what")
    summary.add_column("count", justify="right")
    summary.add_row("records consumed", str(stats.consumed))
    for outcome, count in stats.outcomes.items():
        summary.add_row(f"  {outcome.replace('_', ' ')}", str(count))
    for (receiver, status), count in sorted(store.delivery_counts().items()):
        name = "results topic" if receiver == RESULTS_RECEIVER else receiver
        summary.add_row(f"deliveries to {name}: {status}", str(count))
    console.print(summary)
    console.print(
        f"store: {store.safe_url}   results topic: {settings.kafka.results_topic}   "
        f"dead letters: {settings.kafka.dlq_topic}"
    )
    store.close()


def _classifier_settings(backend: Backend | None) -> Settings:
    settings = load_settings()
    # errors only: a fallback is reported once by the command itself, not once per message
    setup_logging("ERROR", json_format=wants_json(settings.log.format))
    if backend:
        settings.classifier.backend = backend
    return settings


@app.command()
def classify(
    text: Annotated[str, typer.Argument(help="the message body")],
    backend: Annotated[Backend | None, typer.Option(help="default: TRIAGE_CLASSIFIER__BACKEND")] = None,
    subject: Annotated[str | None, typer.Option()] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    tier: Annotated[str | None, typer.Option(help="customer tier")] = None,
) -> None:
    """Classify one message and print the Triage as JSON; exit 3 when the asked backend did not answer."""
    with one_line_errors():
        if not text.strip():
            raise EmptyMessage()
        settings = _classifier_settings(backend)
        # the worker's own checks (a lone surrogate, a body over the limit): one line, not a traceback
        document = {
            "id": "cli",
            "body": text,
            "subject": subject,
            "channel": channel,
            "customer": {"tier": tier},
        }
        message = parse_message(json.dumps(document).encode(), settings.worker.max_body_bytes)
        classifier = make_classifier(settings)
        result = classifier.classify(message)
    print(result.model_dump_json(indent=2))
    if result.degraded:  # the worker falls back on purpose; a person checking the LLM must see it fail
        empty = "" if settings.llm.api_key else "; TRIAGE_LLM__API_KEY is empty"
        err.print(
            f"[bold red]error:[/] the {settings.classifier.backend} backend did not answer "
            f"({settings.llm.base_url}{empty}); this answer is from {result.model}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(3)


@app.command(name="eval")
def eval_(
    csv_file: Annotated[Path | None, typer.Argument(metavar="CSV", help=LABELLED_CSV)] = None,
    task: Annotated[
        Task | None,
        typer.Option(help="sentiment, urgency (high and urgent count as urgent) or category"),
    ] = None,
    backend: Annotated[Backend | None, typer.Option(help="default: TRIAGE_CLASSIFIER__BACKEND")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    limit: Annotated[int | None, typer.Option(help="score only the first N rows")] = None,
    errors: Annotated[
        int, typer.Option("--errors", metavar="N", help="list the N most confident mistakes")
    ] = 0,
    from_store: Annotated[
        bool, typer.Option("--from-store", help="the team's labels in the store, not a CSV (every task)")
    ] = False,
    since: Annotated[str, typer.Option(help="with --from-store: labels given since, e.g. 90d")] = "90d",
    compare: Annotated[
        str | None,
        typer.Option(
            metavar="BACKENDS",
            help="e.g. embedded,cascade,llm: each on the CSV, side by side, with the share sent to the LLM, "
            "cost and CPU (--task default: urgency)",
        ),
    ] = None,
) -> None:
    """Score a classifier on a labelled CSV, or on the team's labels in the store.

    On a CSV: accuracy, macro-F1, per class, confusions, calibration, speed; --from-store: how the model
    and the team agree, and a head trained on the team's earlier labels."""
    with one_line_errors():
        if from_store:
            from triage.feedback.store_commands import eval_from_store

            return eval_from_store(task, since, as_json)
        if compare is not None:
            return _compare(compare, csv_file, task or "urgency", limit, as_json)
        task = _csv_task(csv_file, task)
        settings = _classifier_settings(backend)
        data = read_examples(csv_file, task)
        data = LabelledFile(data.examples[:limit], data.empty_lines)
        classifier = make_classifier(settings)
        workers = settings.worker.concurrency if settings.classifier.backend in ("llm", "cascade") else 1
        with console.status(f"classifying {len(data.examples)} messages with {classifier.name}"):
            report = evaluate(classifier, data, task, workers=workers, errors=errors)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    _show_report(report)


@app.command(name="train")
def train_(
    task: Annotated[Task, typer.Option(help="sentiment, urgency or category (any label set)")],
    csv_file: Annotated[Path | None, typer.Argument(metavar="CSV", help=LABELLED_CSV)] = None,
    out: Annotated[
        Path, typer.Option(help="directory for the head; point TRIAGE_CLASSIFIER__MODEL_DIR at it")
    ] = Path("models"),
    extra: Annotated[
        Path | None, typer.Option(help="more labelled rows, e.g. data/support_examples.csv")
    ] = None,
    extra_weight: Annotated[float, typer.Option(help="sample weight of the --extra rows")] = 5.0,
    from_store: Annotated[
        bool, typer.Option("--from-store", help="learn from the team's labels in the store, not a CSV")
    ] = False,
    since: Annotated[str, typer.Option(help="with --from-store: labels given since, e.g. 90d")] = "90d",
) -> None:
    """Fit the embedded backend's head for a task on your own labelled messages.

    From a CSV, or --from-store from the corrections and confirmations your team gave in Slack and the
    helpdesk."""
    from triage.classify.embedded import Encoder
    from triage.classify.train import train

    with one_line_errors():
        if from_store:
            from triage.feedback.store_commands import train_from_store

            return train_from_store(task, out, since, extra, extra_weight)
        task = _csv_task(csv_file, task)
        data = read_examples(csv_file, task)
        more = read_examples(extra, task).examples if extra else []
        rows = len(data.examples) + len(more)
        with console.status(f"embedding {rows} messages and fitting the {task} head"):
            try:
                trained = train(Encoder(), data.examples, task, more, extra_weight)
            except ValueError as error:
                raise EvalDataError(f"{csv_file}: {error}") from None
        path = out / f"{task}.npz"
        trained.head.save(path, note=f"trained by `triage train` on {csv_file.name} ({trained.n} rows)")
    metric = {"urgency": "urgent F1", "category": "accuracy"}.get(task, "macro-F1")
    score = f"{trained.validation} {metric} {trained.cv_score:.3f}"
    details = ""
    if trained.head.threshold is not None:
        details = (
            f", thresholds {trained.head.threshold:.3f} (high) / {trained.head.strict_threshold:.3f} (urgent)"
        )
    if task == "category":
        details = f", {len(trained.head.classes)} categories"
    skipped = f"; {len(data.empty_lines)} rows without text skipped" if data.empty_lines else ""
    console.print(f"saved {path}: {trained.n} rows, {score}{details}{skipped}")


def _compare(backends: str, csv_file: Path | None, task: Task, limit: int | None, as_json: bool) -> None:
    from triage.classify import compare

    names = compare.parse_backends(backends)
    task = _csv_task(csv_file, task)
    settings = _classifier_settings(None)
    data = read_examples(csv_file, task)
    data = LabelledFile(data.examples[:limit], data.empty_lines)
    with console.status(f"classifying {len(data.examples)} messages with {', '.join(names)}"):
        reports = compare.compare(settings, names, data, task, settings.worker.concurrency)
    if as_json:
        print(json.dumps(reports, ensure_ascii=False))
    else:
        compare.show(console, reports)


def _csv_task(csv_file: Path | None, task: Task | None) -> Task:
    """A CSV command needs the CSV and --task."""
    if csv_file is None:
        raise EvalDataError("name a labelled CSV, or use --from-store")
    if task is None:
        raise EvalDataError("missing option --task: sentiment, urgency or category")
    return task


def _show_report(report: dict) -> None:
    console.print(
        f"[bold]{report['task']}[/] with {report['model']} on {report['n']} messages: "
        f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}"
        + (
            f", calibration error (ECE) {report['calibration_error']:.3f}"
            if "calibration_error" in report
            else ""
        )
    )
    if report["empty_rows"]:
        lines = ", ".join(map(str, report["empty_row_lines"][:10]))
        more = " ..." if report["empty_rows"] > 10 else ""
        console.print(f"[yellow]{report['empty_rows']} rows without text not scored[/] (lines {lines}{more})")
    per_class = Table("class", "precision", "recall", "F1", "support")
    for label, scores in report["per_class"].items():
        per_class.add_row(
            label, *(f"{scores[k]:.3f}" for k in ("precision", "recall", "f1")), str(scores["support"])
        )
    console.print(per_class)
    if len(report["confusion_matrix"]["labels"]) <= MAX_CONFUSION_COLUMNS:
        labels = report["confusion_matrix"]["labels"]
        confusion = Table("true \\ predicted", *labels)
        rows = report["confusion_matrix"]["rows_true_columns_predicted"]
        for label, row in zip(labels, rows, strict=True):
            confusion.add_row(label, *map(str, row))
        console.print(confusion)
    if report["most_confused"]:
        pairs = ", ".join(
            f"{c['label']} → {c['predicted']} ({c['count']})" for c in report["most_confused"][:5]
        )
        console.print(f"most confused: {pairs}")
    if report["errors"]:
        ranked_by = report["errors_ranked_by"]
        confident = not ranked_by.startswith("line")
        title = f"most confident mistakes, by {ranked_by}" if confident else f"mistakes, by {ranked_by}"
        mistakes = Table("line", "text", "label", "predicted", title=title)
        if confident:
            mistakes.add_column(ranked_by)
        for error in report["errors"]:
            confidence = [f"{error['confidence']:.2f}"] if confident else []
            mistakes.add_row(
                str(error["line"]), error["text"], error["label"], error["predicted"], *confidence
            )
        console.print(mistakes)
    console.print(
        f"tokens: {report['prompt_tokens']} prompt, {report['completion_tokens']} completion; "
        f"cost ${report['cost_usd']:.4f} (${report['cost_usd_per_1000']:.4f} per 1,000); "
        f"sent to the LLM {report['llm_share']:.1%} (called high/urgent {report['flagged_share']:.1%}); "
        f"degraded {report['degraded']}; {report['messages_per_s']} messages/s, "
        f"{report['cpu_s_per_1000']} CPU s per 1,000"
    )


def _load_tree(file: Path | None) -> tuple[Path, RoutingTree]:
    """A routing file (default: TRIAGE_ROUTING_FILE), checked against the configured categories."""
    settings = load_settings()
    path = file or settings.routing_path()
    return path, load_routing(path, Vocabulary.from_settings(settings))


@routes_app.command("check")
def routes_check(
    file: Annotated[Path | None, typer.Argument(help="default: TRIAGE_ROUTING_FILE")] = None,
) -> None:
    """Validate a routing file and print its tree; exit 2 with file, line and reason when it is invalid."""
    with one_line_errors():
        path, tree = _load_tree(file)
    console.print(render_tree(tree))
    console.print(f"[green]ok[/]: {path}: {len(tree.receivers)} receivers")


def render_tree(tree: RoutingTree) -> RichTree:
    def label(route: Route, path: str) -> str:
        parts = [f"[bold]{path}[/]"]
        if route.matchers:
            parts.append(" and ".join(str(m) for m in route.matchers))
        if route.receiver:
            parts.append(f"→ [cyan]{route.receiver}[/] ({tree.receivers[route.receiver].kind})")
        if route.continue_:
            parts.append("[dim]continue[/]")
        if route.repeat_interval:
            parts.append(f"[dim]repeat every {route.repeat_interval}[/]")
        if route.quiet_hours:
            q = route.quiet_hours
            parts.append(f"[dim]quiet {q.start:%H:%M}-{q.end:%H:%M} {q.timezone}[/]")
        if route.group_by is not None:
            parts.append(f"[dim]group by {', '.join(route.group_by) or '(nothing)'}[/]")
        return "  ".join(parts)

    def add(node: RichTree, route: Route, path: str) -> None:
        for index, child in enumerate(route.routes):
            child_path = f"{path}.routes[{index}]"
            add(node.add(label(child, child_path)), child, child_path)

    root = RichTree(label(tree.config.route, "route"))
    add(root, tree.config.route, "route")
    return root


@routes_app.command("test")
def routes_test(
    cases_file: Annotated[
        Path, typer.Argument(metavar="CASES.yaml", help="cases: [{fields: {...}, expect: [...]}]")
    ],
    routing: Annotated[Path | None, typer.Option(help="routing file; default TRIAGE_ROUTING_FILE")] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="show the path and the deciding matchers")
    ] = False,
) -> None:
    """Run routing test cases; print a diff for each failure; exit 1 when any fails."""
    with one_line_errors():
        _, tree = _load_tree(routing)
        cases = load_cases(cases_file, tree)
        results = run_cases(tree, cases)
        oncall = StoreView(load_settings().database_url, tree)  # silences, open incidents
    if oncall.problem:
        said = f"silences and open incidents not read: {oncall.problem}"
        console.print(f"[dim]{escape(said)}[/]", highlight=False)
    for case, result in zip(cases, results, strict=True):
        mark = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
        console.print(f"{mark} {result.name}: {', '.join(result.actual) or '(none)'}", highlight=False)
        for receiver, group in result.groups.items():
            console.print(f"       [dim]{receiver} groups it: {group}[/]", highlight=False)
        if not result.passed:
            for name in result.missing:
                console.print(f"     [red]- expected {name}, not routed[/]")
            for name in result.unexpected:
                console.print(f"     [red]+ routed to {name}, not expected[/]")
        for line in preview(tree, flatten(case.fields), oncall):
            console.print(f"       [dim]{escape(line)}[/]", highlight=False)
        if explain or not result.passed:
            for line in result.explanation:
                console.print(f"       [dim]{line}[/]", highlight=False)
    failed = sum(not result.passed for result in results)
    console.print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@routes_app.command("diff")
def routes_diff(
    new_file: Annotated[Path, typer.Argument(metavar="NEW.yaml")],
    since: Annotated[str, typer.Option(help="how far back to replay, e.g. 24h, 7d")] = "7d",
) -> None:
    """Replay stored triage results through the live tree and NEW.yaml; list alerts that would change."""
    with one_line_errors():
        try:
            window = parse_duration(since)
        except ValueError as error:
            raise RoutingError(f"--since: {error}") from None
        settings = load_settings()
        vocabulary = Vocabulary.from_settings(settings)
        live = load_routing(settings.routing_path(), vocabulary)
        new = load_routing(new_file, vocabulary)
        store = Store.existing(settings.database_url)
        stored = store.triaged_since(datetime.now(UTC) - window)
        diff = diff_trees(live, new, ((row.message_id, stored_case(parsed, row)) for parsed, row in stored))
        store.close()
    console.print(
        f"replayed {diff.cases} messages from the last {since}: "
        f"{diff.changed} would be routed differently by {new_file}"
    )
    table = Table("receiver", "alerts that appear", "alerts that disappear", "examples")
    for receiver in sorted(set(diff.appear) | set(diff.disappear)):
        examples = diff.examples.get(f"+{receiver}", []) + diff.examples.get(f"-{receiver}", [])
        table.add_row(
            receiver, f"+{diff.appear[receiver]}", f"-{diff.disappear[receiver]}", ", ".join(examples)
        )
    if diff.changed:
        console.print(table)
