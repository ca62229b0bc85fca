"""The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

from triage.report.model import SENTIMENTS, URGENCIES, IncidentStat, Report
from triage.report.svg import MONEY, SHARES, Segment, bars, columns, count, legend, lines, share

SENTIMENT_COLORS = {"negative": "#d6454f", "neutral": "#9aa5b1", "positive": "#2f9e6b"}
URGENCY_COLORS = {"low": "#9cc3e6", "normal": "#4a7fb5", "high": "#f0a03c", "urgent": "#c0262f"}
STATUS_COLORS = {
    "sent": "#2f9e6b",
    "pending": "#f0a03c",
    "sending": "#4a7fb5",
    "skipped": "#9aa5b1",
    "failed": "#d9480f",
}
OTHER_COLOR = "#6c5fc7"  # values the palettes above do not know

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;margin:0}
body{background:#f5f7fa}
main{max-width:960px;margin:0 auto;padding:24px}
h1{margin:0 0 4px;font-size:24px}h2{margin:32px 0 4px;font-size:18px}h3{margin:16px 0 0;font-size:14px}
.muted,.note{color:#616e7c}.note{font-size:11px;fill:#616e7c}
section{background:#fff;border-radius:8px;padding:4px 16px 12px;margin-top:16px;box-shadow:0 1px 2px #0001}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin-top:16px}
.tile{flex:1 1 auto;white-space:nowrap;background:#fff;border-radius:8px;padding:10px 12px}
.tile{box-shadow:0 1px 2px #0001}
.tile b{display:block;font-size:20px}.tile small{display:block;color:#616e7c}
.chart{width:100%;height:auto;display:block}.chart text{font-size:11px;fill:#3e4c59}
.chart .grid{stroke:#e4e7eb}
.legend{display:flex;flex-wrap:wrap;gap:12px;font-size:12px;margin:6px 0}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e4e7eb}td.n,th.n{text-align:right}
.empty{font-size:18px;margin:48px 0;text-align:center}
"""


def render_html(report: Report) -> str:
    from triage.report.oncall_html import oncall_section  # they draw with this module's helpers
    from triage.report.score_html import score_section

    window = report.window
    heading = (
        f"<h1>CX health report</h1><p class=muted>Last {escape(window.describe())}: "
        f"{_when(window.since)} to {_when(window.until)}, by {window.bucket} (UTC).</p>"
    )
    if not report.activity.total:
        body = f'<p class="empty">No messages in the last {escape(window.describe())}.</p>'
    else:
        body = "".join(
            (
                _tiles(report),
                _sentiment(report),
                score_section(report),
                _urgency(report),
                _categories(report),
                _churn(report),
                _alerts(report),
                _incidents(report),
                oncall_section(report.oncall),
                _model_vs_team(report),
                _llm(report),
                _degraded(report),
            )
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>CX health report, last {escape(window.describe())}</title><style>{CSS}</style></head>"
        f"<body><main>{heading}{body}</main></body></html>\n"
    )


def _tiles(report: Report) -> str:
    activity = report.activity
    total = activity.total
    negative = sum(sum(series.get("negative", ())) for series in activity.sentiment_by_channel.values())
    pressing = sum(sum(activity.urgency.get(level, ())) for level in ("high", "urgent"))
    at_risk = report.churn_risk.total
    sent = sum(stat.sent for stat in report.alerts)
    skipped = sum(stat.statuses.get("skipped", 0) for stat in report.alerts)
    tiles = [
        (count(total), noun(total, "message"), ""),
        (share(negative / total), "negative", ""),
        (count(pressing), "high or urgent", ""),
        (count(at_risk), f"{noun(at_risk, 'customer')} at risk", ""),
        (count(sent), f"{noun(sent, 'alert')} sent", f"{count(skipped)} skipped" if skipped else ""),
    ]
    if activity.used_llm:  # else there is no cost, and nothing could degrade
        tiles += [
            (dollars(sum(activity.cost_usd)), "LLM cost", ""),
            (share(sum(activity.degraded) / total), "degraded", ""),
        ]
    cells = "".join(
        f'<div class="tile"><b>{value}</b>{name}{f"<small>{note}</small>" if note else ""}</div>'
        for value, name, note in tiles
    )
    return f'<div class="tiles">{cells}</div>'


def _section(title: str, intro: str, *parts: str) -> str:
    return f"<section><h2>{escape(title)}</h2><p class=muted>{escape(intro)}</p>{''.join(parts)}</section>"


def _palette(names: Iterable[str], colors: dict[str, str]) -> dict[str, str]:
    return {name: colors.get(name, OTHER_COLOR) for name in names}


def _sentiment(report: Report) -> str:
    by_volume = sorted(
        report.activity.sentiment_by_channel.items(),
        key=lambda item: (-sum(map(sum, item[1].values())), item[0]),
    )
    charts = []
    for channel, series in by_volume:
        colors = _palette([*SENTIMENTS, *series], SENTIMENT_COLORS)
        segments = [Segment(name, series[name], color) for name, color in colors.items() if name in series]
        total = sum(map(sum, series.values()))
        charts.append(
            f"<h3>{escape(channel)} <span class=muted>({counted(total, 'message')})</span></h3>"
            + columns(report.activity.buckets, segments, percent=True, height=150)
        )
    return _section(
        "Sentiment by channel",
        f"Share of negative, neutral and positive messages per {report.window.bucket}, by channel.",
        legend([Segment(name, (), color) for name, color in SENTIMENT_COLORS.items()]),
        *charts,
    )


def _urgency(report: Report) -> str:
    urgency = report.activity.urgency
    colors = _palette([*URGENCIES, *urgency], URGENCY_COLORS)
    segments = [Segment(name, urgency[name], color) for name, color in colors.items()]
    return _section(
        "Urgency mix",
        f"Messages per {report.window.bucket} by the urgency triage gave them.",
        legend(segments),
        columns(report.activity.buckets, segments),
    )


def _categories(report: Report) -> str:
    stats = report.categories
    segments = [
        Segment("negative", [stat.negative for stat in stats], SENTIMENT_COLORS["negative"]),
        Segment(
            "not negative", [stat.messages - stat.negative for stat in stats], SENTIMENT_COLORS["neutral"]
        ),
    ]
    chart = bars(
        [stat.category for stat in stats],
        segments,
        notes=[f"{share(stat.negative_share)} negative" for stat in stats],
    )
    by_share = sorted(stats, key=lambda stat: (-stat.negative_share, -stat.messages, stat.category))
    table = _table(
        ("category", "messages", "negative", "negative share"),
        (
            (stat.category, count(stat.messages), count(stat.negative), share(stat.negative_share))
            for stat in by_share
        ),
    )
    return _section(
        "Categories",
        "Ranked by volume (chart) and by share of negative messages (table).",
        legend(segments),
        chart,
        table,
    )


def _churn(report: Report) -> str:
    customers, total = report.churn_risk.customers, report.churn_risk.total
    intro = (
        "Customers with two or more negative messages or repeat contacts, a conversation whose urgency "
        f"rose, a detractor survey answer or a worsening mood, in the window: {count(total)}"
        + (f", the first {len(customers)} shown" if len(customers) < total else "")
        + "; the most at risk first (points in docs/report.md)."
    )
    table = _table(
        (
            "customer",
            "tier",
            "messages",
            "negative",
            "escalations",
            "repeats",
            "detractor answers",
            "mood",
            "risk",
            "last message (UTC)",
        ),
        (
            (
                customer.customer_id,
                customer.tier or "",
                count(customer.messages),
                count(customer.negative),
                count(customer.escalations),
                count(customer.repeats),
                count(customer.detractors),
                "worsening" if customer.worsening else "",
                count(customer.risk),
                _when(customer.last_message_at),
            )
            for customer in customers
        ),
        text_columns=2,
    )
    return _section("Churn risk", intro, table if customers else "")


def _alerts(report: Report) -> str:
    stats = report.alerts
    if not stats:
        return _section("Alerts", "No alerts in the window (the results topic is not counted).")
    statuses = sorted({status for stat in stats for status in stat.statuses})
    colors = _palette(statuses, STATUS_COLORS)
    receivers = [stat.receiver for stat in stats]
    by_status = [Segment(s, [stat.statuses.get(s, 0) for stat in stats], colors[s]) for s in statuses]
    timed = [stat for stat in stats if stat.latency_sample]
    latency = [
        Segment("p50", [stat.latency_p50_s or 0.0 for stat in timed], "#4a7fb5"),
        Segment("p95", [stat.latency_p95_s or 0.0 for stat in timed], "#c0262f"),
    ]
    skip_reasons = _table(
        ("receiver", "why it was skipped", "deliveries"),
        ((stat.receiver, why, count(n)) for stat in stats for why, n in stat.skipped.items()),
        text_columns=2,
    )
    table = _table(
        ("receiver", *statuses, "p50", "p95", "sent alerts timed"),
        (
            (
                stat.receiver,
                *(count(stat.statuses.get(s, 0)) for s in statuses),
                seconds(stat.latency_p50_s),
                seconds(stat.latency_p95_s),
                count(stat.latency_sample),
            )
            for stat in stats
        ),
    )
    parts = [legend(by_status), bars(receivers, by_status, notes=[count(stat.total) for stat in stats])]
    if timed:
        parts += [
            "<h3>Time from message to alert</h3>",
            legend(latency),
            bars(
                [stat.receiver for stat in timed],
                latency,
                stacked=False,
                value_format=seconds,
                notes=[f"p95 {seconds(stat.latency_p95_s)}" for stat in timed],
            ),
        ]
    return _section(
        "Alerts",
        "Deliveries per receiver by status (the results topic is not counted), and the time from a "
        "message's created_at to its alert being sent.",
        *parts,
        table,
        "<h3>Skipped</h3>" + skip_reasons if any(stat.skipped for stat in stats) else "",
    )


def _incidents(report: Report) -> str:
    incidents = report.incidents
    if not incidents:
        return _section("Incidents", "No grouped incidents in the window (routes with group_by make them).")
    table = _table(
        (
            "receiver",
            "group",
            "first case",
            "cases",
            "customers",
            "urgency",
            "first (UTC)",
            "latest",
            "status",
            "Slack / problem ticket",
        ),
        (
            (
                incident.receiver,
                incident.key,
                incident.summary[:80],
                count(incident.cases),
                count(incident.customers),
                incident.top_urgency,
                _when(incident.first_case_at),
                _when(incident.last_case_at)[11:],
                "open" if incident.open else "closed",
                _where(incident),
            )
            for incident in incidents
        ),
        text_columns=3,
    )
    return _section(
        "Incidents",
        "Cases that grouped routes gathered into one alert (or one Zendesk problem ticket), newest first.",
        table,
    )


def _where(incident: IncidentStat) -> str:
    """Where people find the incident: its problem ticket, else its Slack alert."""
    if incident.problem_ticket_id:
        return f"ticket {incident.problem_ticket_id}"
    return f"Slack ts {incident.slack_ts}" if incident.slack_ts else ""


FIELD_COLORS = {"urgency": "#c0262f", "sentiment": "#4a7fb5", "category": "#6c5fc7"}


def _model_vs_team(report: Report) -> str:
    stats = report.model_vs_team
    if not stats.total_labels:
        return _section(
            "Model vs team",
            "No labels from the team in the window (the Slack alerts' buttons and priority or category "
            "changes in Zendesk make them).",
        )
    sources = ", ".join(f"{count(n)} from {source.capitalize()}" for source, n in stats.sources.items())
    intro = (
        f"{counted(stats.total_labels, 'label')} from the team in the window ({sources}): "
        f"{counted(stats.total_corrections, 'correction')}; the model agreed with the team on "
        f"{share(stats.agreement() or 0.0)} of them."
    )
    per_week = [Segment(field, stats.corrections[field], color) for field, color in FIELD_COLORS.items()]
    weekly = stats.weekly_agreement()
    labelled = [
        (week, agreed) for week, agreed in zip(stats.weeks, weekly, strict=True) if agreed is not None
    ]
    fields = _table(
        ("field", "labels", "corrections", "agreement"),
        (
            (
                field,
                count(sum(stats.labels[field])),
                count(sum(stats.corrections[field])),
                share(agreed) if (agreed := stats.agreement(field)) is not None else "–",
            )
            for field in stats.labels
        ),
    )
    corrected = _table(
        ("model's category", "labels", "corrections", "the team said"),
        (
            (
                category.category,
                count(category.labels),
                count(category.corrections),
                ", ".join(f"{name} {n}" for name, n in category.team_categories.items()),
            )
            for category in stats.categories
        ),
    )
    return _section(
        "Model vs team",
        intro,
        f"<h3>Corrections per week (weeks from Monday, UTC)</h3>{legend(per_week)}",
        columns(stats.weeks, per_week, height=150),
        "<h3>Agreement over time</h3>",
        lines(
            [week for week, _ in labelled],
            [Segment("agreement", [agreed for _, agreed in labelled], "#2f9e6b")],
            value_format=share,
            axis=SHARES,
        ),
        fields,
        "<h3>Most corrected categories</h3>" + corrected if stats.categories else "",
    )


def _llm(report: Report) -> str:
    activity = report.activity
    if not activity.used_llm:
        return ""
    tokens = [
        Segment("prompt tokens", activity.prompt_tokens, "#4a7fb5"),
        Segment("completion tokens", activity.completion_tokens, "#9cc3e6"),
    ]
    cost = [Segment("cost (USD)", activity.cost_usd, "#6c5fc7")]
    return _section(
        "LLM tokens and cost",
        f"Per {report.window.bucket}: "
        f"{counted(sum(activity.prompt_tokens) + sum(activity.completion_tokens), 'token')}, "
        f"{dollars(sum(activity.cost_usd))} in the window.",
        legend(tokens),
        columns(activity.buckets, tokens),
        legend(cost),
        columns(activity.buckets, cost, value_format=dollars, axis=MONEY, height=150),
        _daily_spend(report),
    )


def _daily_spend(report: Report) -> str:
    """Spend per UTC day against TRIAGE_LLM__DAILY_BUDGET_USD, when a cap is set."""
    spend = report.llm_spend
    if spend is None or spend.daily_budget_usd is None:
        return ""
    cap = spend.daily_budget_usd
    rows = [
        (day, dollars(cost), share(cost / cap), "reached: embedded model answered" if at_cap else "")
        for day, cost, at_cap in zip(spend.days, spend.cost_usd, spend.at_cap(), strict=True)
    ]
    return f"<h3>Spend per UTC day against the {escape(dollars(cap))} daily cap</h3>" + _table(
        ("day", "spent", "of the cap", "cap"), rows
    )


def _degraded(report: Report) -> str:
    activity = report.activity
    if not activity.used_llm:
        return ""
    shares = [d / m if m else 0.0 for d, m in zip(activity.degraded, activity.messages, strict=True)]
    return _section(
        "Degraded classification",
        "Share of messages judged by the fallback model because the LLM was unavailable.",
        lines(activity.buckets, [Segment("degraded", shares, "#c0262f")], value_format=share, axis=SHARES),
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], text_columns: int = 1) -> str:
    """The first `text_columns` columns are names; the others hold numbers and are right-aligned."""

    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(
            f"<{tag}{' class=n' if i >= text_columns else ''}>{escape(value)}</{tag}>"
            for i, value in enumerate(values)
        )

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', header)}</tr></thead><tbody>{body}</tbody></table>"


def noun(number: int, word: str) -> str:
    """`message` for 1, `messages` for any other number (English: the nouns here take an s)."""
    return word if number == 1 else f"{word}s"


def counted(number: int, word: str) -> str:
    """`1 message`, `2 messages`, `1,024 messages`."""
    return f"{count(number)} {noun(number, word)}"


def dollars(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
