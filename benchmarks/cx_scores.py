"""Time the report's CX scores (NPS, CSAT, CES, repeat contacts, the at-risk list) on a large store.

    python benchmarks/cx_scores.py --out-db /tmp/cx-1m.db
    python benchmarks/cx_scores.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/cx_1m

Fills an empty store as benchmarks/report_scale.py does (1,000,000 messages over 30 days, one customer
per 20 messages), then makes every `survey`-channel message (about 5%) a survey answer (NPS, CSAT or
CES in turn, a score spread over the scale) and gives every message its customer key (`id:<id>`, as
the worker does). `--no-seed` times a store filled earlier. Each window is timed `--repeat` times on
fresh connections; the median is shown.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report_scale import seed
from triage.report.html import render_html
from triage.report.queries import build_report
from triage.report.score_queries import at_risk, cx_scores, repeat_contacts
from triage.report.window import Window
from triage.store import Store

SURVEYS = """
UPDATE messages SET
  survey_type = CASE CAST(substr(id, 5) AS BIGINT) % 3 WHEN 0 THEN 'nps' WHEN 1 THEN 'csat' ELSE 'ces' END,
  survey_score = CASE CAST(substr(id, 5) AS BIGINT) % 3
    WHEN 0 THEN CAST(substr(id, 5) AS BIGINT) / 3 * 7 % 11
    WHEN 1 THEN 1 + CAST(substr(id, 5) AS BIGINT) / 3 * 7 % 5
    ELSE 1 + CAST(substr(id, 5) AS BIGINT) / 3 * 3 % 7 END
WHERE channel = 'survey'
"""
KEYS = "UPDATE messages SET customer_key = 'id:' || customer_id WHERE customer_id IS NOT NULL"


def add_surveys(store: Store) -> float:
    started = time.perf_counter()
    with store.engine.begin() as connection:
        connection.execute(text(SURVEYS))
        connection.execute(text(KEYS))
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE messages"))
    return time.perf_counter() - started


def time_scores(url: str, since: str) -> dict[str, float]:
    window = Window.last(since)
    timings: dict[str, float] = {}
    store = Store(url)
    with store.session() as session:
        started = time.perf_counter()
        cx = cx_scores(session, window)  # the survey answers' cube and the repeat contacts
        timings["scores"] = time.perf_counter() - started
        started = time.perf_counter()
        repeat_contacts(session, window)
        timings["repeats"] = time.perf_counter() - started
        timings["survey_answers"] = timings["scores"] - timings["repeats"]  # the answers' cube
        started = time.perf_counter()
        at_risk(session, window, cx.repeat_contacts)
        timings["at_risk"] = time.perf_counter() - started
        timings["answers"] = cx.answers
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
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--since", nargs="+", default=["7d", "30d"], help="windows to time")
    parser.add_argument("--repeat", type=int, default=3, help="runs per window; the median is shown")
    parser.add_argument("--no-seed", dest="fill", action="store_false", help="time the store as it is")
    args = parser.parse_args()

    store = Store(args.database_url or f"sqlite:///{args.out_db}")
    store.upgrade()
    if args.fill:
        took = seed(store, args.messages, args.days, 8)
        print(f"inserted {args.messages:,} messages into {store.safe_url} in {took:.1f} s")
        print(f"survey answers and customer keys set in {add_surveys(store):.1f} s")
    print(f"{'window':>7} {'answers':>8} {'survey cube':>12} {'repeats':>8} {'at risk':>8} {'report':>7}")
    for since in args.since:
        runs = [time_scores(store.url, since) for _ in range(args.repeat)]
        typical = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
        print(
            f"{since:>7} {typical['answers']:>8,.0f} {typical['survey_answers']:>11.2f}s "
            f"{typical['repeats']:>7.2f}s {typical['at_risk']:>7.2f}s {typical['report']:>6.2f}s"
        )
    store.close()


if __name__ == "__main__":
    main()
