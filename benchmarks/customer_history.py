"""The worker's CPU per message for the customer's history, on a store of a million messages.

    python benchmarks/customer_history.py --out-db /tmp/history-1m.db
    python benchmarks/customer_history.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/history_1m

Fills an empty store as benchmarks/report_scale.py does (1,000,000 messages of 50,000 customers over 30
days), links every message to its customer (`customer_key`, `customer_identities`), then stores
`--cases` new messages of random existing customers the way the worker does (batches of 32 through
Store.save_triaged_many), three ways:

- `none`: no customer at all (the store path before customers were linked);
- `off`: TRIAGE_HISTORY__ENABLED=false: the message is linked to its customer in the write;
- `on`: also the history: one read of the customer's messages, then triage/history.py.

Per way: this process's CPU per message (what the worker pays; PostgreSQL's own work is in its
server process) and the wall time per message.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))

from report_scale import seed

from triage.customers import identities
from triage.history import Contact, customer_history
from triage.message import Customer
from triage.store import Store, Triaged
from triage.store.tables import DeliveryRow, MessageRow, TriageRow

BATCH = 32
WAYS = ("none", "off", "on")


def link_all(store: Store) -> float:
    """Every seeded message's key and identity, as the worker would have written them."""
    started = time.perf_counter()
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE messages SET customer_key = 'id:' || customer_id"))
        connection.execute(
            text(
                "INSERT INTO customer_identities (identity, customer_key, linked_at) "
                "SELECT DISTINCT customer_key, customer_key, :now FROM messages"
            ),
            {"now": datetime.now(UTC)},
        )
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def case(n: int, way: str, customers: int, rng: random.Random) -> tuple[Triaged, Customer]:
    customer = Customer(id=f"cust-{rng.randrange(customers)}")
    message_id = f"bench-{way}-{n:07d}"
    now = datetime.now(UTC)
    message = MessageRow(
        id=message_id,
        conversation_id=message_id,
        channel=rng.choice(("email", "chat", "phone")),
        customer_id=customer.id,
        created_at=now,
        raw="{}",
        parsed={"id": message_id, "body": "Where is my order?"},
        kafka_topic="bench",
        kafka_partition=0,
        kafka_offset=n,
    )
    result = TriageRow(
        message_id=message_id,
        urgency=rng.choice(("low", "normal", "high", "urgent")),
        sentiment=rng.choice(("negative", "neutral", "positive")),
        category=rng.choice(("billing", "shipping", "bug")),
        language="en",
        summary="s",
        confidence=0.9,
        model="bench",
        receivers=["_results"],
    )
    delivery = DeliveryRow(message_id=message_id, receiver="_results", payload={"message_id": message_id})
    return Triaged(message, result, [delivery]), customer


def run(store: Store, way: str, cases: int, customers: int, seed_value: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per message for one way."""
    rng = random.Random(seed_value)
    cpu, wall = time.process_time(), time.perf_counter()
    batch: list[Triaged] = []
    for n in range(cases):
        item, customer = case(n, way, customers, rng)
        if way != "none":
            found = identities(customer, hashed=False)
            item = Triaged(item.message, item.result, item.deliveries, found)
            if way == "on":
                message, result = item.message, item.result
                now = Contact(
                    message.id,
                    message.created_at,
                    message.channel,
                    result.urgency,
                    result.sentiment,
                    result.category,
                )
                result.customer_history = customer_history(now, store.customer_contacts(found, now.at))
        batch.append(item)
        if len(batch) == BATCH:
            store.save_triaged_many(batch)
            batch = []
    if batch:
        store.save_triaged_many(batch)
    return (time.process_time() - cpu) * 1000 / cases, (time.perf_counter() - wall) * 1000 / cases


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out-db", type=Path, help="SQLite file to create")
    target.add_argument("--database-url", help="an empty (or, with --no-seed, filled) store")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--cases", type=int, default=3000, help="new messages stored per way")
    parser.add_argument("--no-seed", dest="fill", action="store_false", help="use the store as it is")
    args = parser.parse_args()
    url = f"sqlite:///{args.out_db}" if args.out_db else args.database_url
    store = Store(url)
    store.upgrade()
    customers = max(1, args.messages // 20)  # report_scale's synthesize: 20 messages per customer
    if args.fill:
        print(f"seeded {args.messages:,} messages in {seed(store, args.messages, args.days, 8):.0f} s")
        print(f"linked them to {customers:,} customers in {link_all(store):.0f} s")
    run(store, "warm-up", 300, customers, 1)
    size = f"{args.messages:,} messages, {args.cases:,} new per way"
    print(f"{store.engine.dialect.name}, {size}, batches of {BATCH}")
    print("way    CPU ms/message   wall ms/message")
    for index, way in enumerate(WAYS):
        cpu, wall = run(store, way, args.cases, customers, 100 + index)
        print(f"{way:<6} {cpu:>14.3f}   {wall:>15.3f}")
    store.close()


if __name__ == "__main__":
    main()
