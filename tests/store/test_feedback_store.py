"""The feedback tables on SQLite and PostgreSQL: a label stored once by its event key, re-routed
deliveries only with a new label, receipts recorded once, the cursor moved in place."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tests.store.test_store import rows
from triage.store import Store
from triage.store.feedback import Correction, FeedbackStore
from triage.store.tables import DeliveryRow, LabelRow, ReceiptRow

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def label(key: str, team: str = "urgent") -> LabelRow:
    return LabelRow(
        message_id="m1",
        field="urgency",
        model_value="high",
        team_value=team,
        source="slack",
        person_id="U0ANA",
        event_key=key,
        labelled_at=AT,
    )


def count(store: Store, table) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_a_label_and_its_deliveries_are_stored_once_and_the_cursor_moves(database_url):
    store = Store(database_url)
    store.upgrade()
    store.save_triaged(*rows("m1", ("cx",)))
    feedback = FeedbackStore(store)
    paged = DeliveryRow(message_id="m1", receiver="oncall", payload={"urgency": "urgent"})

    first = feedback.save([Correction([label("slack:1:U0ANA:urgency")], [paged])], cursor=("events", "100"))
    again = feedback.save(
        [
            Correction(
                [label("slack:1:U0ANA:urgency")], [DeliveryRow(message_id="m1", receiver="cx", payload={})]
            )
        ],
        cursor=("events", "160"),
    )
    assert [stored.event_key for stored in first] == ["slack:1:U0ANA:urgency"] and again == []
    assert count(store, LabelRow) == 1
    assert sorted(feedback.receivers_of("m1")) == ["cx", "oncall"]  # the repeat added no delivery
    assert feedback.cursor("events") == "160" and feedback.cursor("other") is None

    later = feedback.save([Correction([label("slack:2:U0ANA:urgency", "normal")], [paged])])
    assert len(later) == 1 and count(store, DeliveryRow) == 2  # oncall's delivery exists: not twice
    assert [stored.team_value for stored in feedback.labels_of("m1")] == ["urgent", "normal"]
    store.close()


def test_receipts_are_recorded_once_and_found_by_ticket_and_time(database_url):
    store = Store(database_url)
    store.upgrade()
    store.save_triaged(*rows("m1", ("helpdesk",)))
    store.save_triaged(*rows("m2", ("helpdesk",)))
    with store.session() as session:
        ids = dict(session.execute(select(DeliveryRow.message_id, DeliveryRow.id)).all())
    feedback = FeedbackStore(store)
    for message, minute in (("m1", 0), ("m2", 10)):
        receipt = dict(delivery_id=ids[message], message_id=message, system="zendesk", place="48211")
        for _ in range(2):  # a retry that found its write records nothing new
            feedback.record_receipt(ReceiptRow(**receipt, created_at=AT + timedelta(minutes=minute)))
    assert count(store, ReceiptRow) == 2
    assert feedback.ticket_receipt("48211", AT - timedelta(minutes=1)) is None
    assert feedback.ticket_receipt("48211", AT + timedelta(minutes=5)).message_id == "m1"
    assert feedback.ticket_receipt("48211", AT + timedelta(minutes=15)).message_id == "m2"
    assert feedback.ticket_receipt("777", AT + timedelta(minutes=15)) is None
    store.close()
