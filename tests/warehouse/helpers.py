"""Many rows written straight into the store (times in the past, so the sync takes them at once), and
`triage warehouse sync` run as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from triage.store import Store
from triage.store.tables import DeliveryRow, MessageRow, TriageRow

TRIAGE = [sys.executable, "-m", "triage"]
START = datetime(2026, 11, 1, tzinfo=UTC)


def bulk_fill(store: Store, count: int, start: datetime = START, prefix: str = "m") -> None:
    """`count` messages, each with its result and one sent alert, one a second from `start`."""
    for first in range(0, count, 5000):
        messages, results, deliveries = [], [], []
        for n in range(first, min(count, first + 5000)):
            moment = start + timedelta(seconds=n)
            message_id = f"{prefix}{n:08d}"
            messages.append(
                {"id": message_id, "conversation_id": f"k{n % 997}", "channel": "email",
                 "customer_id": f"c{n % 5003}", "customer_tier": ("free", "pro", "enterprise")[n % 3],
                 "created_at": moment, "received_at": moment, "raw": "{}",
                 "parsed": {"id": message_id, "body": f"Where is order {n}?"},
                 "kafka_topic": "support.messages", "kafka_partition": n % 3, "kafka_offset": n}
            )  # fmt: skip
            results.append(
                {"message_id": message_id, "urgency": ("low", "normal", "high", "urgent")[n % 4],
                 "sentiment": ("negative", "neutral", "positive")[n % 3], "category": "shipping",
                 "language": "en", "summary": "asks where the order is", "confidence": 0.9, "model": "rules",
                 "degraded": False, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0,
                 "receivers": ["oncall"], "triaged_at": moment}
            )  # fmt: skip
            deliveries.append(
                {"message_id": message_id, "receiver": "oncall", "conversation_id": f"k{n % 997}",
                 "status": "sent", "payload": {}, "attempts": 1, "created_at": moment,
                 "sent_at": moment + timedelta(seconds=3), "changed_at": moment + timedelta(seconds=3),
                 "priority": 0}
            )  # fmt: skip
        with store.session() as session:
            session.execute(insert(MessageRow), messages)
            session.execute(insert(TriageRow), results)
            session.execute(insert(DeliveryRow), deliveries)


def sync_env(database_url: str, warehouse_url: str, **more: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRIAGE_")}
    return env | {"TRIAGE_DATABASE_URL": database_url, "TRIAGE_WAREHOUSE__URL": warehouse_url, **more}


def run_sync(database_url: str, warehouse_url: str, *args: str, **more: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TRIAGE, "warehouse", "sync", *args],
        env=sync_env(database_url, warehouse_url, **more),
        capture_output=True,
        text=True,
        timeout=300,
    )


def duckdb_url(path: Path) -> str:
    return f"duckdb:///{path}"
