"""What the report shows, as plain data: built by `queries`, drawn by `html`, dumped as JSON by `as_json`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from triage.report.oncall import OnCall, oncall_json
from triage.report.scores import CXScores, scores_json
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
    """A customer whose history in the window says they may leave (triage/report/score_queries.py)."""

    customer_id: str  # the customer id, else the customer key
    tier: str | None  # the tier on the customer's newest message in the window
    messages: int
    negative: int
    escalations: int  # messages more urgent than the one before them in their conversation
    last_message_at: datetime
    repeats: int = 0  # contacts within 7 days of their previous one
    detractors: int = 0  # survey answers in the negative band (NPS 0-6, CSAT 1-2, CES 1-3)
    worsening: bool = False  # their mood is getting worse
    risk: int = 0  # the ranking's points


@dataclass(frozen=True)
class ReceiverStat:
    receiver: str
    statuses: dict[str, int]
    latency_p50_s: float | None  # message created_at (else received_at) to sent_at
    latency_p95_s: float | None
    latency_sample: int  # how many sent alerts the percentiles come from
    skipped: dict[str, int]  # why deliveries were skipped ("Slack is not configured ...") -> how many

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def sent(self) -> int:
        return self.statuses.get("sent", 0)


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

    @property
    def used_llm(self) -> bool:
        """Whether the LLM judged, or failed to judge, a message in the window: without it the LLM's
        tokens, cost and degraded share have no data."""
        return (
            any(self.prompt_tokens) or any(self.completion_tokens) or any(self.cost_usd) or any(self.degraded)
        )


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
class CorrectedCategory:
    """Labels people gave to messages the model put in one category."""

    category: str  # the model's category
    labels: int
    corrections: int  # labels of any field that differ from the model's value
    team_categories: dict[str, int]  # the categories people moved these messages to, most first


@dataclass(frozen=True)
class ModelVsTeam:
    """The team's labels against the model's values, per week (its Monday, UTC) and field."""

    weeks: list[str]
    labels: dict[str, list[int]]  # field -> labels per week (corrections and confirmations)
    corrections: dict[str, list[int]]  # field -> labels that differ from the model's value, per week
    sources: dict[str, int]  # slack, zendesk -> labels
    categories: list[CorrectedCategory]  # the most corrected first

    @property
    def total_labels(self) -> int:
        return sum(map(sum, self.labels.values()))

    @property
    def total_corrections(self) -> int:
        return sum(map(sum, self.corrections.values()))

    def agreement(self, field: str | None = None) -> float | None:
        """The share of labels that agree with the model (None: no labels)."""
        fields = [field] if field else list(self.labels)
        labels = sum(sum(self.labels[f]) for f in fields)
        corrections = sum(sum(self.corrections[f]) for f in fields)
        return (labels - corrections) / labels if labels else None

    def weekly_agreement(self) -> list[float | None]:
        weekly = []
        for week in range(len(self.weeks)):
            labels = sum(series[week] for series in self.labels.values())
            corrections = sum(series[week] for series in self.corrections.values())
            weekly.append((labels - corrections) / labels if labels else None)
        return weekly


@dataclass(frozen=True)
class LLMSpend:
    """LLM spend per UTC day of the window, against TRIAGE_LLM__DAILY_BUDGET_USD (None: no cap)."""

    days: list[str]
    cost_usd: list[float]
    daily_budget_usd: float | None = None

    def at_cap(self) -> list[bool]:
        cap = self.daily_budget_usd
        return [cap is not None and cost >= cap for cost in self.cost_usd]


@dataclass(frozen=True)
class Report:
    window: Window
    activity: Activity
    categories: list[CategoryStat]
    churn_risk: ChurnRisk
    alerts: list[ReceiverStat]
    incidents: list[IncidentStat]
    model_vs_team: ModelVsTeam
    llm_spend: LLMSpend | None = None
    oncall: OnCall | None = None
    cx: CXScores | None = None  # triage/report/scores.py


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
            **_spend(report.llm_spend),
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
                    "repeats": customer.repeats,
                    "detractors": customer.detractors,
                    "worsening": customer.worsening,
                    "risk": customer.risk,
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
                "skipped": stat.skipped,
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
        "model_vs_team": _model_vs_team(report.model_vs_team),
        **({"oncall": oncall_json(report.oncall)} if report.oncall is not None else {}),
        **scores_json(report.cx),
    }


def _spend(spend: LLMSpend | None) -> dict[str, Any]:
    if spend is None:
        return {}
    return {
        "daily_budget_usd": spend.daily_budget_usd,
        "spend_by_day": [
            {"day": day, "cost_usd": round(cost, 6), "at_cap": at_cap}
            for day, cost, at_cap in zip(spend.days, spend.cost_usd, spend.at_cap(), strict=True)
        ],
    }


def _model_vs_team(stats: ModelVsTeam) -> dict[str, Any]:
    return {
        "labels": stats.total_labels,
        "corrections": stats.total_corrections,
        "agreement": _rounded(stats.agreement()),
        "fields": {
            field: {
                "labels": sum(stats.labels[field]),
                "corrections": sum(stats.corrections[field]),
                "agreement": _rounded(stats.agreement(field)),
            }
            for field in stats.labels
        },
        "sources": stats.sources,
        "weeks": stats.weeks,
        "labels_per_week": stats.labels,
        "corrections_per_week": stats.corrections,
        "agreement_per_week": [_rounded(share) for share in stats.weekly_agreement()],
        "most_corrected_categories": [
            {
                "category": category.category,
                "labels": category.labels,
                "corrections": category.corrections,
                "team_categories": category.team_categories,
            }
            for category in stats.categories
        ],
    }


def _rounded(share: float | None) -> float | None:
    return round(share, 4) if share is not None else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
