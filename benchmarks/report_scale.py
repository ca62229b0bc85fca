"""Fill a store with synthetic triaged messages and time the CX health report on it.

    python benchmarks/report_scale.py --messages 1000000 --out-db /tmp/report-1m.db
    python benchmarks/report_scale.py --messages 1000000 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/report_1m
    python benchmarks/report_scale.py --messages 100000 --out-db demo-100k.db --no-time   # a store to look at

The store must be empty (it is migrated first); `--no-seed` times a store filled earlier. Rows go in with
the driver's bulk path (sqlite3 executemany, PostgreSQL COPY), in the shape the worker writes them:
conversations of 1-5 messages spread over `--days`, one results-topic delivery per message and Slack or
helpdesk alerts for some. PostgreSQL is ANALYZEd after loading, as autovacuum would; SQLite is not, as
the worker never does it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from triage.report.html import render_html
from triage.report.queries import activity, alerts, build_report, categories
from triage.report.score_queries import at_risk, repeat_contacts
from triage.report.window import Window
from triage.routing import RESULTS_RECEIVER
from triage.store import Store
from triage.store.tables import MessageRow

CHANNELS = {"email": 35, "chat": 30, "social": 10, "review": 10, "survey": 5, "phone": 10}
TIERS = {"free": 70, "pro": 25, "enterprise": 5}
SENTIMENTS = {"negative": 30, "neutral": 45, "positive": 25}
URGENCIES = {"low": 30, "normal": 50, "high": 15, "urgent": 5}
CATEGORIES = {
    "billing": 18, "outage": 4, "bug": 12, "account_access": 9, "shipping": 14, "refund": 10,
    "cancellation": 5, "feature_request": 7, "how_to": 11, "praise": 4, "security": 1, "other": 5,
}  # fmt: skip
BATCH = 20_000
MESSAGE_COLUMNS = (
    "id, conversation_id, channel, customer_id, customer_tier, ticket_id, created_at, received_at,"
    " raw, parsed, kafka_topic, kafka_partition, kafka_offset"
)
TRIAGE_COLUMNS = (
    "message_id, urgency, sentiment, category, language, summary, confidence, model, degraded,"
    " prompt_tokens, completion_tokens, cost_usd, receivers, triaged_at"
)
DELIVERY_COLUMNS = (
    "id, message_id, receiver, conversation_id, status, payload, attempts, created_at, sent_at, changed_at"
)


@dataclass(frozen=True)
class Synthetic:
    """One message with its triage result and deliveries, as table rows (datetimes still objects)."""

    message: tuple[Any, ...]
    result: tuple[Any, ...]
    deliveries: list[tuple[Any, ...]]


def pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def synthesize(count: int, days: float, seed: int, now: datetime) -> Iterator[Synthetic]:
    """`count` messages, oldest first, in conversations of 1-5 messages by one customer each."""
    rng = random.Random(seed)
    customers = [(f"cust-{i}", pick(rng, TIERS)) for i in range(max(1, count // 20))]
    starts = []
    made = 0
    while made < count:
        size = min(rng.randint(1, 5), count - made)
        start = now - timedelta(seconds=rng.uniform(0, days * 86400))
        customer = rng.choice(customers)
        for _ in range(size):
            starts.append((start, len(starts), customer, f"conv-{made}"))
            start = min(now, start + timedelta(minutes=rng.expovariate(1 / 90)))
        made += size
    starts.sort()
    delivery_id = 0
    for offset, (created, _, (customer_id, tier), conversation) in enumerate(starts):
        message_id = f"msg-{offset:08d}"
        received = min(now, created + timedelta(seconds=rng.uniform(0.1, 5)))
        channel, sentiment, urgency = pick(rng, CHANNELS), pick(rng, SENTIMENTS), pick(rng, URGENCIES)
        ticket = str(100000 + offset) if rng.random() < 0.6 else None
        document = {
            "id": message_id,
            "conversation_id": conversation,
            "channel": channel,
            "created_at": created.isoformat(),
            "body": "Synthetic support message about an order, a charge or a login problem. " * 3,
            "customer": {"id": customer_id, "tier": tier, "name": "Synthetic Customer"},
            "ticket": {"system": "zendesk", "id": ticket} if ticket else None,
        }
        raw = json.dumps(document)
        prompt, completion = rng.randint(550, 950), rng.randint(40, 140)
        receivers = ["helpdesk"] if ticket else []
        if urgency in ("high", "urgent"):
            receivers.append("oncall")
        if sentiment == "negative" and tier != "free":
            receivers.append("cx-leads")
        deliveries = []
        for receiver in [*receivers, RESULTS_RECEIVER]:
            delivery_id += 1
            status = "sent" if receiver == RESULTS_RECEIVER or rng.random() < 0.97 else "pending"
            sent = received + timedelta(seconds=rng.lognormvariate(0.5, 1.0)) if status == "sent" else None
            payload = json.dumps({"message_id": message_id, "urgency": urgency, "sentiment": sentiment})
            deliveries.append(
                (
                    delivery_id,
                    message_id,
                    receiver,
                    conversation,
                    status,
                    payload,
                    1,
                    received,
                    sent,
                    sent or received,
                )
            )
        yield Synthetic(
            message=(
                message_id,
                conversation,
                channel,
                customer_id,
                tier,
                ticket,
                created,
                received,
                raw,
                raw,
                "support.messages",
                offset % 6,
                offset // 6,
            ),
            result=(
                message_id,
                urgency,
                sentiment,
                pick(rng, CATEGORIES),
                "en",
                "A synthetic summary.",
                round(rng.uniform(0.5, 1.0), 3),
                "gpt-4o-mini",
                rng.random() < 0.03,
                prompt,
                completion,
                (prompt * 0.15 + completion * 0.60) / 1e6,
                json.dumps(receivers),
                received,
            ),
            deliveries=deliveries,
        )


def batches(rows: Iterator[Synthetic]) -> Iterator[list[Synthetic]]:
    batch: list[Synthetic] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def sqlite_value(value: Any) -> Any:
    """What SQLAlchemy's SQLite types store: UTC text for datetimes, 0/1 for booleans."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def load_sqlite(store: Store, rows: Iterator[Synthetic]) -> None:
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        for batch in batches(rows):
            for table, columns, values in tables(batch):
                marks = ", ".join("?" * (columns.count(",") + 1))
                cursor.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                    ([sqlite_value(v) for v in row] for row in values),
                )
            connection.commit()
    finally:
        connection.close()


def load_postgres(store: Store, rows: Iterator[Synthetic]) -> None:
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        for batch in batches(rows):
            for table, columns, values in tables(batch):
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in values:
                        copy.write_row(row)
            connection.commit()
        cursor.execute("SELECT setval('deliveries_id_seq', (SELECT max(id) FROM deliveries))")
        connection.commit()
    finally:
        connection.close()


def tables(batch: list[Synthetic]) -> list[tuple[str, str, list[tuple[Any, ...]]]]:
    """Parents before children, for the foreign keys."""
    return [
        ("messages", MESSAGE_COLUMNS, [row.message for row in batch]),
        ("triage_results", TRIAGE_COLUMNS, [row.result for row in batch]),
        ("deliveries", DELIVERY_COLUMNS, [d for row in batch for d in row.deliveries]),
    ]


def seed(store: Store, count: int, days: float, seed_value: int) -> float:
    with store.session() as session:
        if session.scalar(select(func.count()).select_from(MessageRow)):
            raise SystemExit(f"{store.safe_url} already holds messages: use an empty store, or --no-seed")
    started = time.perf_counter()
    rows = synthesize(count, days, seed_value, datetime.now(UTC))
    if store.engine.dialect.name == "sqlite":
        load_sqlite(store, rows)
    else:
        load_postgres(store, rows)
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def time_report(url: str, since: str) -> dict[str, float]:
    """Seconds for each query of the report over the window, and for the whole page.

    Each run has its own connections, as one `triage report` has: psycopg prepares a statement run
    five times on one connection, and PostgreSQL may then plan it once for every window."""
    window = Window.last(since)
    timings: dict[str, float] = {}
    store = Store(url)
    with store.session() as session:
        for name, query in (
            ("activity", activity),
            ("categories", categories),
            (
                "churn_risk",
                lambda session, window: at_risk(session, window, repeat_contacts(session, window)),
            ),
            ("alerts", alerts),
        ):
            started = time.perf_counter()
            query(session, window)
            timings[name] = time.perf_counter() - started
    store.close()
    store = Store(url)
    started = time.perf_counter()
    with store.session() as session:
        render_html(build_report(session, window))
    timings["report"] = time.perf_counter() - started
    store.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out-db", type=Path, help="SQLite file to create")
    target.add_argument("--database-url", help="an empty (or, with --no-seed, filled) store")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0, help="spread the messages over this many days")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--since", nargs="+", default=["7d", "30d"], help="windows to time")
    parser.add_argument("--repeat", type=int, default=5, help="runs per window; the median is shown")
    parser.add_argument("--no-seed", dest="fill", action="store_false", help="time the store as it is")
    parser.add_argument("--no-time", dest="time", action="store_false", help="only fill the store")
    args = parser.parse_args()

    store = Store(args.database_url or f"sqlite:///{args.out_db}")
    store.upgrade()
    if args.fill:
        took = seed(store, args.messages, args.days, args.seed)
        print(f"inserted {args.messages:,} messages into {store.safe_url} in {took:.1f} s")
    if args.time:
        print(
            f"{'window':>7} {'activity':>9} {'categories':>11} {'churn_risk':>11} {'alerts':>7} {'report':>7}"
        )
        for since in args.since:
            runs = [time_report(store.url, since) for _ in range(args.repeat)]
            typical = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
            print(
                f"{since:>7} {typical['activity']:>8.2f}s {typical['categories']:>10.2f}s "
                f"{typical['churn_risk']:>10.2f}s {typical['alerts']:>6.2f}s {typical['report']:>6.2f}s"
            )
    store.close()


if __name__ == "__main__":
    main()
