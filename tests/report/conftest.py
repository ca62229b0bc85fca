"""A store with a small week of triaged messages whose every aggregate is known, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from triage.report.window import Window
from triage.store import Store
from triage.store.feedback import Correction, FeedbackStore
from triage.store.tables import DeliveryRow, LabelRow, MessageRow, TriageRow

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WEEK = Window(since=NOW - timedelta(days=7), until=NOW)
HOSTILE = '<img src=x onerror="alert(1)">'  # customer-derived text must come out escaped


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def add(
    store: Store,
    message_id: str,
    triaged: datetime,
    *,
    customer: str | None,
    conversation: str,
    channel: str | None = "email",
    tier: str | None = "free",
    urgency: str = "normal",
    sentiment: str = "neutral",
    category: str = "billing",
    degraded: bool = False,
    tokens: tuple[int, int] = (0, 0),
    cost: float = 0.0,
    created: datetime | None = None,
    alerts: dict[str, tuple[str, float | None]] | None = None,
    skip_reason: str | None = None,
    survey: tuple[str, int] | None = None,
    customer_key: str | None = None,
) -> None:
    """One message as the worker stores it; `alerts` maps receiver to (status, seconds to sent_at); a
    skipped delivery's reason is `skip_reason`, else "<receiver> is not configured"."""
    written = created or triaged
    deliveries = [
        DeliveryRow(
            message_id=message_id,
            receiver=receiver,
            conversation_id=conversation,
            status=status,
            payload={},
            created_at=triaged,
            sent_at=written + timedelta(seconds=latency) if latency is not None else None,
            detail=(skip_reason or f"{receiver} is not configured") if status == "skipped" else None,
        )
        for receiver, (status, latency) in {"_results": ("sent", 1.0), **(alerts or {})}.items()
    ]
    stored = store.save_triaged(
        MessageRow(
            id=message_id,
            conversation_id=conversation,
            channel=channel,
            customer_id=customer,
            customer_tier=tier,
            created_at=created,
            received_at=triaged,
            raw="{}",
            parsed={},
            kafka_topic="support.messages",
            kafka_partition=0,
            kafka_offset=0,
            survey_type=survey[0] if survey else None,
            survey_score=survey[1] if survey else None,
            customer_key=customer_key,
        ),
        TriageRow(
            message_id=message_id,
            urgency=urgency,
            sentiment=sentiment,
            category=category,
            language="en",
            summary="",
            confidence=0.9,
            model="test",
            degraded=degraded,
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            cost_usd=cost,
            receivers=list(alerts or {}),
            triaged_at=triaged,
        ),
        deliveries,
    )
    assert stored


def fill_week(store: Store) -> None:
    """The numbers tests/report asserts. Window: WEEK (2026-11-13 12:00 to 2026-11-20 12:00 UTC)."""
    # outside the window: must count nowhere, though it would make cust-c a repeat complainer
    add(store, "old", at(1, 9), customer="cust-c", conversation="conv-c0", sentiment="negative",
        alerts={"oncall": ("sent", 5.0)})  # fmt: skip
    # cust-a: two negative messages and an escalation (low -> high); the tier changed to pro
    add(store, "a1", at(18, 9), customer="cust-a", conversation="conv-a", urgency="low", sentiment="negative",
        tokens=(100, 10), cost=0.001, created=at(18, 8, 59),
        alerts={"helpdesk": ("skipped", 65.0)})  # fmt: skip
    add(store, "a2", at(18, 10), customer="cust-a", tier="pro", conversation="conv-a", urgency="high",
        sentiment="negative", degraded=True, tokens=(200, 20), cost=0.002, created=at(18, 9, 59),
        alerts={"oncall": ("sent", 70.0)})  # fmt: skip
    # cust-b: urgent then normal is no escalation, and one negative message is not a pattern
    add(store, "b1", at(19, 8), customer="cust-b", tier="enterprise", conversation="conv-b", channel="chat",
        urgency="urgent", sentiment="negative", category="outage", tokens=(300, 30), cost=0.003,
        created=at(19, 7, 59), alerts={"oncall": ("sent", 80.0)})  # fmt: skip
    add(store, "b2", at(19, 9), customer="cust-b", tier="enterprise", conversation="conv-b", channel="chat",
        sentiment="positive", category="outage", alerts={"helpdesk": ("sent", 5.0)})  # fmt: skip
    # cust-c: no channel, one neutral message in the window
    add(store, "c1", at(20, 11), customer="cust-c", conversation="conv-c1", channel=None, category="how_to")
    # cust-d: two negative messages in two conversations, high then urgent: not an escalation
    add(store, "d1", at(20, 11, 30), customer="cust-d", conversation="conv-d1", urgency="high",
        sentiment="negative", created=at(20, 11, 29), alerts={"oncall": ("sent", 100.0)})  # fmt: skip
    add(store, "d2", at(20, 11, 40), customer="cust-d", conversation="conv-d2", urgency="urgent",
        sentiment="negative", alerts={"oncall": ("pending", None)})  # fmt: skip
    # cust-e: an escalation alone; ids sort against time, so the order must come from the time
    add(store, "e2", at(16, 10), customer="cust-e", conversation="conv-e", channel="chat", urgency="low",
        category="shipping")  # fmt: skip
    add(store, "e1", at(16, 11), customer="cust-e", conversation="conv-e", channel="chat",
        sentiment="positive", category="shipping")  # fmt: skip
    # no customer id: counted everywhere except the churn list
    add(store, "x1", at(16, 12), customer=None, conversation="conv-x", urgency="low", sentiment="negative",
        category=HOSTILE)  # fmt: skip
    add(store, "x2", at(16, 13), customer=None, conversation="conv-x", urgency="high", sentiment="negative",
        category=HOSTILE)  # fmt: skip


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """An empty, migrated store: SQLite or PostgreSQL (the `database_url` fixture runs both)."""
    store = Store(database_url)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def week(store: Store) -> Store:
    fill_week(store)
    return store


def label(
    message_id: str, field: str, model: str, team: str, when: datetime, source: str = "slack"
) -> LabelRow:
    return LabelRow(
        message_id=message_id,
        field=field,
        model_value=model,
        team_value=team,
        source=source,
        person_id="U0ANA" if source == "slack" else "7",
        person_name="ana" if source == "slack" else None,
        event_key=f"{source}:{message_id}:{field}:{when.isoformat()}",
        labelled_at=when,
    )


def fill_labels(store: Store) -> None:
    """The team's labels on fill_week's messages (weeks of WEEK: Mondays 2026-11-09 and 2026-11-16)."""
    FeedbackStore(store).save(
        [
            Correction([label("old", "urgency", "normal", "urgent", at(1, 10))]),  # outside the window
            Correction([label("a1", "category", "billing", "refund", at(13, 14))]),  # the first week
            Correction([label("a1", "urgency", "low", "low", at(13, 15), source="zendesk")]),
            Correction([label("a2", "category", "billing", "refund", at(18, 11))]),
            Correction([label("a2", "urgency", "high", "urgent", at(18, 12), source="zendesk")]),
            Correction([label("b1", "sentiment", "negative", "negative", at(19, 9))]),
            Correction([label("b1", "category", "outage", "bug", at(19, 10))]),
            Correction([label("c1", "urgency", "normal", "normal", at(20, 11, 30))]),
        ]
    )


def fill_surveys(store: Store) -> None:
    """Survey answers in WEEK (weeks from Mondays 2026-11-09 and 2026-11-16) whose scores are computed
    by hand in tests/report/test_scores.py."""
    answers = [  # id, day, hour, channel, survey, score
        ("n1", 14, 9, "email", "nps", 10), ("n2", 16, 9, "email", "nps", 9), ("n3", 17, 9, "chat", "nps", 8),
        ("n4", 18, 9, "chat", "nps", 6), ("n5", 19, 9, "email", "nps", 3), ("n6", 20, 10, "chat", "nps", 10),
        ("c1", 15, 9, "email", "csat", 5), ("c2", 18, 9, "chat", "csat", 4), ("c3", 19, 9, "chat", "csat", 2),
        ("c4", 20, 9, "email", "csat", 3), ("e1", 17, 9, "email", "ces", 7), ("e2", 19, 9, "chat", "ces", 2),
        ("n-old", 10, 9, "email", "nps", 0),  # before the window: counts nowhere
    ]  # fmt: skip
    for message_id, day, hour, channel, survey, score in answers:
        sentiment = "negative" if score <= {"nps": 6, "csat": 2, "ces": 3}[survey] else "positive"
        add(store, f"s-{message_id}", at(day, hour), customer=f"cust-{message_id}", conversation=message_id,
            channel=channel, sentiment=sentiment, category="other", survey=(survey, score))  # fmt: skip
    # answered (created_at) before the window, received in it: the answer's time is when it was given
    add(store, "s-late", at(14, 9), customer="cust-late", conversation="late", created=at(13, 11),
        survey=("nps", 0), sentiment="negative", category="other")  # fmt: skip
