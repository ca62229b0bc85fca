import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select, text

from tests.store.test_store import LEASE, rows
from triage.store import BatchWriter, Store, StoreUnavailable, Triaged
from triage.store.tables import DeliveryRow, TriageRow


@pytest.fixture
def store(database_url):
    store = Store(database_url)
    store.upgrade()
    yield store
    store.close()


def count(store: Store, table) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(table))


@contextmanager
def writes_held(store: Store):
    """Another transaction holds the write lock: the writer's next transaction waits for it."""
    with store.engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE takes the lock
        if connection.dialect.name == "postgresql":
            connection.execute(text("LOCK TABLE messages IN EXCLUSIVE MODE"))
        yield


def test_a_batch_stores_each_id_once_and_says_which_were_new(store):
    store.save_triaged(*rows("old", ("_results",)))
    batch = [Triaged(*rows(i, ("oncall", "_results"))) for i in ("a", "old", "b", "a")]
    assert store.save_triaged_many(batch) == [True, False, True, False]  # stored before, repeated in it
    assert count(store, TriageRow.__table__) == 3
    assert count(store, DeliveryRow.__table__) == 1 + 2 * 2  # none for the two duplicates
    claimed = store.claim_deliveries("oncall", "w", 10, LEASE)
    assert [d.message_id for d in claimed] == ["a", "b"]  # storage order is the outbox order


def test_concurrent_callers_share_transactions_and_each_gets_its_answer(store):
    commits = []
    event.listen(store.engine, "commit", lambda _connection: commits.append(1))
    writer = BatchWriter(store)
    writer.start()
    answers: list[tuple[str, bool]] = []

    def save(message_id: str) -> None:
        answers.append((message_id, writer.save_triaged(*rows(message_id, ("_results",)))))

    threads = [threading.Thread(target=save, args=(f"m{n % 40}",)) for n in range(60)]  # 20 repeats
    with writes_held(store):  # the writer waits with the first caller's rows; the others queue up
        for thread in threads:
            thread.start()
        time.sleep(0.5)
    for thread in threads:
        thread.join(30)
    writer.stop()
    assert sorted(message_id for message_id, stored in answers if stored) == sorted(
        f"m{n}" for n in range(40)
    )
    assert len(answers) == 60  # and the 20 repeats were told they were duplicates
    assert count(store, TriageRow.__table__) == 40 and count(store, DeliveryRow.__table__) == 40


def test_a_bad_row_in_a_batch_fails_only_its_own_caller(store):
    writer = BatchWriter(store)
    writer.start()
    message, result, deliveries = rows("bad")
    result.urgency = None  # NOT NULL
    errors: list[Exception] = []
    answers: list[bool] = []

    def save(items) -> None:
        try:
            answers.append(writer.save_triaged(*items))
        except Exception as error:
            errors.append(error)

    blocker = threading.Thread(target=save, args=(rows("first"),))
    batch = [threading.Thread(target=save, args=((message, result, deliveries),))]
    batch += [threading.Thread(target=save, args=(rows(f"ok{n}"),)) for n in range(5)]
    with writes_held(store):
        blocker.start()
        time.sleep(0.5)  # the writer is waiting for the lock with "first" alone
        for thread in batch:
            thread.start()
        time.sleep(0.5)  # the six are queued: they make the next batch together
    for thread in [blocker, *batch]:
        thread.join(30)
    writer.stop()
    assert answers == [True] * 6 and len(errors) == 1 and not isinstance(errors[0], StoreUnavailable)
    assert not store.is_processed("bad") and count(store, TriageRow.__table__) == 6


def test_an_unreachable_database_is_an_outage_for_every_caller(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'missing-dir' / 'triage.db'}")
    writer = BatchWriter(store)
    writer.start()
    with pytest.raises(StoreUnavailable, match="unable to open database file"):
        writer.save_triaged(*rows("m1"))
    writer.stop()
    with pytest.raises(StoreUnavailable, match="stopped"):
        writer.save_triaged(*rows("m2"))
