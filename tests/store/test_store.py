from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from triage.store import DeliveryUpdate, RecordPosition, Store
from triage.store.tables import Base, DeliveryRow, MessageRow, TriageRow


def rows(message_id: str, receivers=("oncall",)):
    message = MessageRow(
        id=message_id,
        conversation_id="c1",
        raw="{}",
        parsed={},
        kafka_topic="t",
        kafka_partition=0,
        kafka_offset=0,
    )
    result = TriageRow(
        message_id=message_id,
        urgency="high",
        sentiment="negative",
        category="billing",
        language="en",
        summary="s",
        confidence=0.9,
        model="rules",
        receivers=list(receivers),
    )
    deliveries = [
        DeliveryRow(message_id=message_id, receiver=r, payload={"n": i}) for i, r in enumerate(receivers)
    ]
    return message, result, deliveries


def test_migrations_create_exactly_the_declared_schema(database_url):
    store = Store(database_url)
    store.upgrade()
    store.upgrade()  # every start runs it; the second time is a no-op
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


LEASE = timedelta(seconds=60)


def test_a_message_id_is_stored_once_with_its_result_and_outbox(database_url):
    store = Store(database_url)
    store.upgrade()
    assert store.save_triaged(*rows("m1", ("oncall", "_results"))) is True
    assert store.is_processed("m1")
    assert store.save_triaged(*rows("m1", ("oncall", "_results"))) is False  # duplicate: no second effect
    assert store.count_due() == 2 and sorted(store.unfinished_receivers()) == ["_results", "oncall"]
    [(message, result)] = store.results(["m1"])
    assert (message.id, result.urgency, result.receivers) == ("m1", "high", ["oncall", "_results"])


def test_claimed_deliveries_are_not_claimed_twice_and_finished_ones_never_again(database_url):
    store = Store(database_url)
    store.upgrade()
    for i in range(3):
        store.save_triaged(*rows(f"m{i}", ("oncall",)))
    first = store.claim_deliveries("oncall", "worker-a", 2, LEASE)
    assert [d.message_id for d in first] == ["m0", "m1"] and all(d.attempts == 1 for d in first)
    second = store.claim_deliveries("oncall", "worker-b", 10, LEASE)
    assert [d.message_id for d in second] == ["m2"]  # m0 and m1 are worker-a's until the lease ends
    store.finish_deliveries(
        [
            DeliveryUpdate(first[0].id, "sent"),
            DeliveryUpdate(first[1].id, "skipped", "no ticket id"),
            DeliveryUpdate(second[0].id, "retry", "HTTP 500"),
        ]
    )
    [again] = store.claim_deliveries("oncall", "worker-a", 10, LEASE)
    assert (again.message_id, again.attempts, again.detail) == (
        "m2",
        2,
        "HTTP 500",
    )  # attempts > 1: check first
    assert store.claim_deliveries("oncall", "worker-a", 10, LEASE) == []
    assert store.delivery_counts() == {
        ("oncall", "sent"): 1,
        ("oncall", "skipped"): 1,
        ("oncall", "sending"): 1,
    }


def test_a_claim_whose_sender_died_is_taken_over_after_the_lease(database_url):
    store = Store(database_url)
    store.upgrade()
    store.save_triaged(*rows("m1", ("oncall",)))
    assert len(store.claim_deliveries("oncall", "dead-worker", 10, LEASE)) == 1
    assert store.claim_deliveries("oncall", "new-worker", 10, LEASE) == []
    [taken] = store.claim_deliveries("oncall", "new-worker", 10, timedelta(seconds=-1))  # lease over
    assert taken.claimed_by == "new-worker" and taken.attempts == 2


def test_released_claims_are_taken_again_at_once_and_only_the_claimers_own(database_url):
    store = Store(database_url)
    store.upgrade()
    store.save_triaged(*rows("m1", ("oncall",)))
    store.save_triaged(*rows("m2", ("oncall",)))
    [first] = store.claim_deliveries("oncall", "lane-a", 1, LEASE)  # its answer was lost in an outage
    [second] = store.claim_deliveries("oncall", "lane-b", 1, LEASE)
    store.release_claims("oncall", "lane-a")
    [again] = store.claim_deliveries("oncall", "lane-a", 10, LEASE)  # lease not over, yet taken
    assert (again.id, again.attempts) == (first.id, 2)  # attempts > 1: senders look before posting
    assert store.claim_deliveries("oncall", "lane-c", 10, LEASE) == []  # lane-b's claim still holds
    assert second.claimed_by == "lane-b"


def test_deliveries_wait_for_quiet_hours_to_end(database_url):
    store = Store(database_url)
    store.upgrade()
    message, result, [delivery] = rows("m1", ("oncall",))
    delivery.not_before = datetime.now(UTC) + timedelta(hours=1)
    store.save_triaged(message, result, [delivery])
    assert store.claim_deliveries("oncall", "w", 10, LEASE) == [] and store.count_due() == 0
    assert store.unfinished_receivers() == ["oncall"]


def test_the_outbox_keeps_storage_order(database_url):
    store = Store(database_url)
    store.upgrade()
    for i in range(5):
        store.save_triaged(*rows(f"m{i}", ("_results",)))
    claimed = store.claim_deliveries("_results", "w", 10, LEASE)
    assert [d.message_id for d in claimed] == [f"m{i}" for i in range(5)]


def test_a_dead_letter_is_claimed_once_and_never_sent_twice(database_url):
    store = Store(database_url)
    store.upgrade()
    lease = timedelta(seconds=60)
    here = RecordPosition("in", 2, 41)
    assert store.claim_dead_letter(here, "invalid_json", "bad", "worker-a", lease) == "send"
    assert store.claim_dead_letter(here, "invalid_json", "bad", "worker-b", lease) == "busy"  # a is on it
    assert store.claim_dead_letter(here, "invalid_json", "bad", "worker-a", lease) == "resend"  # its retry
    store.dead_letter_sent(here)
    for claimer in ("worker-a", "worker-b"):
        assert store.claim_dead_letter(here, "invalid_json", "bad", claimer, lease) == "sent"
    other = RecordPosition("in", 2, 42)  # the same topic and partition, the next offset: its own row
    assert store.claim_dead_letter(other, "invalid_json", "bad", "worker-b", lease) == "send"


def test_a_dead_letter_whose_claimer_died_is_taken_over_after_the_lease(database_url):
    store = Store(database_url)
    store.upgrade()
    here = RecordPosition("in", 0, 7)
    assert store.claim_dead_letter(here, "processing_failed", "x", "dead", timedelta(seconds=60)) == "send"
    assert store.claim_dead_letter(here, "processing_failed", "x", "new", timedelta(seconds=60)) == "busy"
    assert store.claim_dead_letter(here, "processing_failed", "x", "new", timedelta(seconds=0)) == "resend"
    assert store.claim_dead_letter(here, "processing_failed", "x", "dead", timedelta(seconds=60)) == "busy"
