"""Time the report's on-call section on a store of a million messages with takes, silences and
escalations.

    python benchmarks/oncall_report.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/oncall_1m
    python benchmarks/oncall_report.py --out-db /tmp/oncall-1m.db

Fills an empty store with benchmarks/report_scale.py's messages (`--messages`, spread over 30 days), then
adds what the on-call loop writes: 70 % of the sent `oncall` alerts taken (in Slack, or in Zendesk for
one in five) 10 s to 2 h after delivery, 20 % of `cx-leads` deliveries silenced by one of five
silences and 5 % inhibited, and an escalation decided for every sent `oncall` alert (`cancelled` when
taken within 15 minutes, else `sent`). Then times the on-call queries alone and the whole page, median
of `--repeat` runs on fresh connections, wall and CPU seconds of this process (the database's own CPU
is not in it for PostgreSQL).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, timedelta
from pathlib import Path

from report_scale import seed  # a sibling script: run as one, its directory is on sys.path
from sqlalchemy import insert, select, text

from triage.report.html import render_html
from triage.report.oncall_queries import oncall
from triage.report.queries import build_report
from triage.report.window import Window
from triage.store import Store
from triage.store.tables import AcknowledgementRow, DeliveryRow, EscalationRow, TriageRow

TAKEN = 0.70
ZENDESK = 0.20
ESCALATE_AFTER = timedelta(minutes=15)
BATCH = 20_000


def add_oncall(store: Store, seed_value: int) -> tuple[int, int]:
    """Takes and escalations for the sent `oncall` alerts, silenced and inhibited `cx-leads` deliveries;
    returns (takes, escalations)."""
    rng = random.Random(seed_value)
    with store.session() as session:
        alerts = session.execute(
            select(DeliveryRow.id, DeliveryRow.message_id, DeliveryRow.sent_at, TriageRow.urgency)
            .join(TriageRow, TriageRow.message_id == DeliveryRow.message_id)
            .where(DeliveryRow.receiver == "oncall", DeliveryRow.status == "sent")
        ).all()
        session.execute(
            text(
                "UPDATE deliveries SET status = 'silenced', detail = 'silence s' || (id % 5) "
                "WHERE receiver = 'cx-leads' AND id % 20 < 4"
            )
        )
        session.execute(
            text(
                "UPDATE deliveries SET status = 'inhibited', detail = 'incident 1 (oncall)' "
                "WHERE receiver = 'cx-leads' AND id % 20 = 4"
            )
        )
    takes, escalations = [], []
    for delivery_id, message_id, sent_at, urgency in alerts:
        sent = sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)
        waited = timedelta(seconds=rng.uniform(10, 7200)) if rng.random() < TAKEN else None
        if waited is not None:
            takes.append(
                {
                    "subject": f"message:{message_id}",
                    "message_id": message_id,
                    "who": "ana",
                    "how": "zendesk" if rng.random() < ZENDESK else "slack",
                    "urgency": urgency,
                    "alerted_at": sent,
                    "acked_at": sent + waited,
                }
            )
        in_time = waited is not None and waited < ESCALATE_AFTER
        escalations.append(
            {
                "source_delivery_id": delivery_id,
                "subject": f"message:{message_id}",
                "receiver": "cx-leads",
                "status": "cancelled" if in_time else "sent",
                "decided_at": sent + ESCALATE_AFTER,
            }
        )
    for table, rows in ((AcknowledgementRow, takes), (EscalationRow, escalations)):
        for start in range(0, len(rows), BATCH):
            with store.session() as session:
                session.execute(insert(table), rows[start : start + BATCH])
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    return len(takes), len(escalations)


def time_once(url: str, since: str) -> dict[str, float]:
    window = Window.last(since)
    timings: dict[str, float] = {}
    for name in ("oncall", "report"):
        store = Store(url)
        wall, cpu = time.perf_counter(), time.process_time()
        with store.session() as session:
            if name == "oncall":
                oncall(session, window)
            else:
                render_html(build_report(session, window))
        timings[name] = time.perf_counter() - wall
        timings[f"{name}_cpu"] = time.process_time() - cpu
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
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--since", nargs="+", default=["7d", "30d"], help="windows to time")
    parser.add_argument("--repeat", type=int, default=3, help="runs per window; the median is shown")
    parser.add_argument("--no-seed", dest="fill", action="store_false", help="time the store as it is")
    args = parser.parse_args()

    store = Store(args.database_url or f"sqlite:///{args.out_db}")
    store.upgrade()
    if args.fill:
        took = seed(store, args.messages, 30.0, args.seed)
        started = time.perf_counter()
        takes, escalations = add_oncall(store, args.seed)
        print(
            f"inserted {args.messages:,} messages in {took:.1f} s, then {takes:,} takes and "
            f"{escalations:,} escalations in {time.perf_counter() - started:.1f} s"
        )
    print(f"{'window':>7} {'on-call queries':>16} {'(CPU)':>7} {'whole page':>11} {'(CPU)':>7}")
    for since in args.since:
        runs = [time_once(store.url, since) for _ in range(args.repeat)]
        typical = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
        print(
            f"{since:>7} {typical['oncall']:>15.2f}s {typical['oncall_cpu']:>6.2f}s "
            f"{typical['report']:>10.2f}s {typical['report_cpu']:>6.2f}s"
        )
    store.close()


if __name__ == "__main__":
    main()
