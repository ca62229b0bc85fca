"""What the report shows, as plain data: built by `queries`, drawn by `html`, dumped as JSON by `as_json`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from triage.report.window import Window

SENTIMENTS = ("negative", "neutral", "positive")
URGENCIES = ("low", "normal", "high", "urgent")
NO_CHANNEL = "(none)"


@dataclass(frozen=True)
class CategoryStat:
    category: str
    messages: int
    negative: int

    @property
    def negative_share(self) -> float:
        return self.negative / self.messages if self.messages else 0.0


@dataclass(frozen=True)
class AtRiskCustomer:
    """A customer with repeated negative messages or a conversation whose urgency rose."""

    customer_id: str
    tier: str | None  # the tier on the customer's newest stored message
    messages: int
    negative: int
    escalations: int  # messages more urgent than the one before them in their conversation
    last_message_at: datetime


@dataclass(frozen=True)
class ReceiverStat:
    receiver: str
    statuses: dict[str, int]
    latency_p50_s: float | None  # message created_at (else received_at) to sent_at
    latency_p95_s: float | None
    latency_sample: int  # how many sent alerts the percentiles come from

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


@dataclass(frozen=True)
class Activity:
    """The per-bucket series: lists aligned with `buckets` (days, or hours for short windows)."""

    buckets: list[str]
    messages: list[int]
    sentiment_by_channel: dict[str, dict[str, list[int]]]
    urgency: dict[str, list[int]]
    degraded: list[int]
    prompt_tokens: list[int]
    completion_tokens: list[int]
    cost_usd: list[float]

    @property
    def total(self) -> int:
        return sum(self.messages)


@dataclass(frozen=True)
class ChurnRisk:
    total: int  # customers at risk in the window
    customers: list[AtRiskCustomer]  # the first of them, most at risk first


@dataclass(frozen=True)
class IncidentStat:
    """Cases a grouped route gathered into one alert (or one problem ticket) for a receiver."""

    receiver: str
    key: str  # the group_by values, e.g. "category=outage"
    summary: str  # its first case's
    cases: int
    customers: int
    top_urgency: str
    first_case_at: datetime
    last_case_at: datetime
    open: bool  # a case joined within group_idle
    slack_ts: str | None
    problem_ticket_id: str | None


@dataclass(frozen=True)
class Report:
    window: Window
    activity: Activity
    categories: list[CategoryStat]
    churn_risk: ChurnRisk
    alerts: list[ReceiverStat]
    incidents: list[IncidentStat]


def as_json(report: Report) -> dict[str, Any]:
    """The report as one JSON-ready object (keys documented in docs/report.md, "JSON keys")."""
    activity = report.activity
    return {
        "generated_at": _iso(report.window.until),
        "window": {
            "since": _iso(report.window.since),
            "until": _iso(report.window.until),
            "bucket": report.window.bucket,
        },
        "total_messages": activity.total,
        "buckets": activity.buckets,
        "messages": activity.messages,
        "sentiment_by_channel": activity.sentiment_by_channel,
        "urgency": activity.urgency,
        "degraded": activity.degraded,
        "llm": {
            "prompt_tokens": activity.prompt_tokens,
            "completion_tokens": activity.completion_tokens,
            "cost_usd": [round(cost, 6) for cost in activity.cost_usd],
        },
        "categories": [
            {
                "category": stat.category,
                "messages": stat.messages,
                "negative": stat.negative,
                "negative_share": round(stat.negative_share, 4),
            }
            for stat in report.categories
        ],
        "churn_risk": {
            "total": report.churn_risk.total,
            "customers": [
                {
                    "customer_id": customer.customer_id,
                    "tier": customer.tier,
                    "messages": customer.messages,
                    "negative": customer.negative,
                    "escalations": customer.escalations,
                    "last_message_at": _iso(customer.last_message_at),
                }
                for customer in report.churn_risk.customers
            ],
        },
        "alerts": [
            {
                "receiver": stat.receiver,
                "total": stat.total,
                "statuses": stat.statuses,
                "latency_s": {
                    "p50": stat.latency_p50_s,
                    "p95": stat.latency_p95_s,
                    "sample": stat.latency_sample,
                },
            }
            for stat in report.alerts
        ],
        "incidents": [
            {
                "receiver": incident.receiver,
                "key": incident.key,
                "summary": incident.summary,
                "cases": incident.cases,
                "customers": incident.customers,
                "top_urgency": incident.top_urgency,
                "first_case_at": _iso(incident.first_case_at),
                "last_case_at": _iso(incident.last_case_at),
                "status": "open" if incident.open else "closed",
                "slack_ts": incident.slack_ts,
                "problem_ticket_id": incident.problem_ticket_id,
            }
            for incident in report.incidents
        ],
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
