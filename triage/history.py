"""A customer's history, as each of their cases carries it (`customer_history`).

Computed by the worker when it triages a message, from the customer's earlier messages in the store
(one indexed read, triage/store/customers.py) and this message's own judgement. Times are the
messages' own (`created_at`, else when the store received them), so a replayed sequence gets the
figures it had live. The fields:

- `contacts_24h`, `contacts_7d`: the customer's messages in the 24 hours (7 days) up to this one,
  this one included;
- `channels_7d`: the channels of those 7 days' messages, sorted;
- `urgent_7d`: their other cases (not this one) judged high or urgent in those 7 days;
- `sentiment_trend`: over their last 5 messages, this one included, each sentiment scored
  negative -1, neutral 0, positive +1: the least-squares slope per message ≤ -0.25 is `worsening`,
  ≥ +0.25 `improving`, anything else (or a single message) `steady`;
- `first_contact_days`: whole days since their first message (0 on the first day);
- `earlier_case_id`: the latest other message of theirs in the 7 days with this one's category (a
  repeat contact about the same problem), or null.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
TREND_MESSAGES = 5
TREND_SLOPE = 0.25
SENTIMENT_SCORE = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
TRENDS = ("worsening", "steady", "improving")
URGENT = ("high", "urgent")
# the routing file's names for them: `customer.contacts_24h >= 3`, `customer.sentiment_trend = worsening`
ROUTING_FIELDS = (
    "customer.contacts_24h",
    "customer.contacts_7d",
    "customer.urgent_7d",
    "customer.first_contact_days",
    "customer.sentiment_trend",
)


@dataclass(frozen=True)
class Contact:
    """One message of the customer's, as the history needs it."""

    message_id: str
    at: datetime
    channel: str | None
    urgency: str
    sentiment: str
    category: str


def customer_history(now: Contact, past: Iterable[Contact]) -> dict[str, Any]:
    """The history record of the case `now`, given the customer's other messages (any order, repeats
    and messages later than `now` ignored)."""
    earlier = {c.message_id: c for c in past if c.message_id != now.message_id and c.at <= now.at}
    ordered = sorted(earlier.values(), key=lambda c: (c.at, c.message_id))
    week = [c for c in ordered if c.at >= now.at - WEEK]
    same_problem = [c for c in week if c.category == now.category]
    first = ordered[0].at if ordered else now.at
    return {
        "contacts_24h": 1 + sum(1 for c in week if c.at >= now.at - DAY),
        "contacts_7d": 1 + len(week),
        "channels_7d": sorted({c.channel for c in [*week, now] if c.channel}),
        "urgent_7d": sum(1 for c in week if c.urgency in URGENT),
        "sentiment_trend": sentiment_trend(
            [c.sentiment for c in ordered[-(TREND_MESSAGES - 1) :]] + [now.sentiment]
        ),
        "first_contact_days": (now.at - first) // DAY,
        "earlier_case_id": same_problem[-1].message_id if same_problem else None,
    }


def sentiment_trend(sentiments: list[str]) -> str:
    """`worsening`, `steady` or `improving`: the slope of the scores, oldest first (see above)."""
    scores = [SENTIMENT_SCORE.get(s, 0.0) for s in sentiments]
    n = len(scores)
    if n < 2:
        return "steady"
    mean_x, mean_y = (n - 1) / 2, sum(scores) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(scores)) / sum(
        (x - mean_x) ** 2 for x in range(n)
    )
    if slope <= -TREND_SLOPE:
        return "worsening"
    if slope >= TREND_SLOPE:
        return "improving"
    return "steady"


def history_fields(history: dict[str, Any] | None) -> dict[str, Any]:
    """The history as routing fields (`customer.contacts_24h`, ...); none when there is no history."""
    if not history:
        return {}
    return {name: history.get(name.removeprefix("customer.")) for name in ROUTING_FIELDS}
