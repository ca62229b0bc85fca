"""The customer's history on a hand-checked sequence with fixed times, read from the store."""

from datetime import UTC, datetime

import pytest

from triage.customers import identities
from triage.history import Contact, customer_history, sentiment_trend
from triage.message import Customer
from triage.store import Store
from triage.store.tables import MessageRow, TriageRow

DANA = Customer(email="dana@example.com", name="Dana Whitfield")
LOOK_ALIKE = Customer(email="dana@other.example", name="Dana Whitfield")

# (id, customer, when, channel, urgency, sentiment, category)
SEQUENCE = [
    ("d-1", DANA, datetime(2026, 2, 20, 10, 0, tzinfo=UTC), "email", "normal", "neutral", "billing"),
    ("d-2", DANA, datetime(2026, 3, 1, 12, 0, tzinfo=UTC), "email", "high", "neutral", "billing"),
    ("x-1", LOOK_ALIKE, datetime(2026, 3, 1, 13, 0, tzinfo=UTC), "chat", "urgent", "negative", "billing"),
    ("d-3", DANA, datetime(2026, 3, 2, 8, 0, tzinfo=UTC), "chat", "urgent", "negative", "shipping"),
    ("d-4", DANA, datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "chat", "normal", "negative", "billing"),
    ("d-5", DANA, datetime(2026, 3, 5, 9, 0, tzinfo=UTC), "email", "low", "positive", "billing"),  # later
]

# worked out by hand (see docs/customers.md for the rules)
EXPECTED = {
    "d-1": {
        "contacts_24h": 1,
        "contacts_7d": 1,
        "channels_7d": ["email"],
        "urgent_7d": 0,
        "sentiment_trend": "steady",
        "first_contact_days": 0,
        "earlier_case_id": None,
    },
    "d-3": {  # d-2 was 20 h before; d-1 almost 10 days before: outside the week
        "contacts_24h": 2,
        "contacts_7d": 2,
        "channels_7d": ["chat", "email"],
        "urgent_7d": 1,  # d-2 (high); the look-alike's urgent case is not Dana's
        "sentiment_trend": "worsening",  # neutral, neutral, negative: slope -0.5
        "first_contact_days": 9,  # 9 days 22 h
        "earlier_case_id": None,  # no shipping case before
    },
    "d-4": {
        "contacts_24h": 3,  # d-2 (21 h before), d-3, d-4
        "contacts_7d": 3,
        "channels_7d": ["chat", "email"],
        "urgent_7d": 2,  # d-2 high, d-3 urgent; d-4 itself is normal
        "sentiment_trend": "worsening",  # 0, 0, -1, -1: slope -0.4
        "first_contact_days": 9,  # 9 days 23 h
        "earlier_case_id": "d-2",  # billing again within the week
    },
}


@pytest.fixture
def store(database_url):
    store = Store(database_url)
    store.upgrade()
    for message_id, customer, when, channel, urgency, sentiment, category in SEQUENCE:
        message = MessageRow(
            id=message_id,
            conversation_id=message_id,
            channel=channel,
            created_at=when,
            raw="{}",
            parsed={},
            kafka_topic="t",
            kafka_partition=0,
            kafka_offset=0,
        )
        result = TriageRow(
            message_id=message_id,
            urgency=urgency,
            sentiment=sentiment,
            category=category,
            language="en",
            summary="s",
            confidence=0.9,
            model="rules",
            receivers=[],
        )
        assert store.save_triaged(message, result, [], identities(customer, hashed=False))
    yield store
    store.close()


@pytest.mark.parametrize("message_id", sorted(EXPECTED))
def test_history_figures_on_a_hand_checked_sequence(store, message_id):
    _, customer, when, channel, urgency, sentiment, category = next(s for s in SEQUENCE if s[0] == message_id)
    now = Contact(message_id, when, channel, urgency, sentiment, category)
    past = store.customer_contacts(identities(customer, hashed=False), when)
    assert customer_history(now, past) == EXPECTED[message_id]


def test_a_customer_the_store_has_not_seen_has_a_first_contact(store):
    when = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    now = Contact("n-1", when, "chat", "low", "positive", "billing")
    found = identities(Customer(email="new@example.com"), hashed=False)
    assert customer_history(now, store.customer_contacts(found, when)) == {
        "contacts_24h": 1,
        "contacts_7d": 1,
        "channels_7d": ["chat"],
        "urgent_7d": 0,
        "sentiment_trend": "steady",
        "first_contact_days": 0,
        "earlier_case_id": None,
    }


@pytest.mark.parametrize(
    ("sentiments", "trend"),
    [
        (["positive"], "steady"),
        (["neutral", "negative"], "worsening"),
        (["negative", "neutral", "positive"], "improving"),
        (["negative", "neutral", "negative", "neutral", "negative"], "steady"),  # slope 0
        (["neutral", "neutral", "neutral", "neutral", "negative"], "steady"),  # slope -0.2
        (["neutral", "neutral", "neutral", "negative", "negative"], "worsening"),  # slope -0.3
    ],
)
def test_sentiment_trend(sentiments, trend):
    assert sentiment_trend(sentiments) == trend
