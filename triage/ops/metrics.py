"""Prometheus metrics. Names are stable: dashboards and alerts use them."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_CONSUMED = Counter("triage_messages_consumed", "Records read from the input topic")
MESSAGES_PROCESSED = Counter("triage_messages_processed", "Messages classified and stored")
MESSAGES_DUPLICATE = Counter("triage_messages_duplicate", "Messages whose id was already stored (no effect)")
MESSAGES_DEAD_LETTERED = Counter(
    "triage_messages_dead_lettered", "Records sent to the dead-letter topic", ["reason"]
)
RECORDS_SKIPPED = Counter(
    "triage_records_skipped",
    "Records that are not messages (Debezium deletes and tombstones): no effect, no dead letter",
    ["reason"],
)
PROCESSING_RETRIES = Counter(
    "triage_processing_retries", "Transient failures (store, broker) that made the worker retry", ["cause"]
)
DELIVERIES = Counter("triage_deliveries", "Outbox deliveries by receiver and outcome", ["receiver", "status"])
HELPDESK_NOT_CONFIGURED = Counter(
    "triage_helpdesk_not_configured",
    "Helpdesk deliveries skipped because the ticket's helpdesk (ticket.system) is not configured",
    ["system"],
)
IN_FLIGHT = Gauge("triage_in_flight", "Messages fetched and not yet finished (waiting or being handled)")
FETCH_PAUSED = Gauge("triage_fetch_paused", "1 while fetching is paused because too much is in flight")
OUTBOX_PENDING = Gauge(
    "triage_outbox_pending",
    "Deliveries due and not yet sent (pending, being sent, or failed and waiting to be retried); "
    "deliveries held by quiet hours are not counted",
    ["receiver"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "triage_outbox_oldest_pending_age_seconds",
    "How long the oldest delivery counted in triage_outbox_pending has been due",
    ["receiver"],
)
CLASSIFIER_FALLBACKS = Counter(
    "triage_classifier_fallbacks",
    "Messages classified by the fallback model because the LLM was unavailable (error, circuit_open)"
    " or held back by the daily budget (budget)",
    ["reason"],
)
ROUTING_RELOADS = Counter(
    "triage_routing_reloads", "Routing file reloads by result (success, failure)", ["result"]
)
CLASSIFY_SECONDS = Histogram(
    "triage_classification_seconds",
    "Time to classify one message, by backend (the model that answered)",
    ["backend"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LLM_TOKENS = Counter("triage_llm_tokens", "LLM tokens used, by kind (prompt, completion)", ["kind"])
LLM_COST = Counter("triage_llm_cost_usd", "LLM cost in US dollars, from the configured price table")
CONSUMER_LAG = Gauge(
    "triage_consumer_lag", "Records behind the end of each assigned partition", ["partition"]
)
CORRECTIONS = Counter(
    "triage_corrections",
    "Labels from the team that differ from the model's value, by field and source (slack, zendesk)",
    ["field", "source"],
)
CONFIRMATIONS = Counter(
    "triage_confirmations",
    "Labels from the team that agree with the model's value, by field and source",
    ["field", "source"],
)
FEEDBACK_REFUSED = Counter(
    "triage_feedback_refused",
    "Slack clicks refused and stored nothing (unknown message, malformed payload, wrong channel)",
    ["reason"],
)
INGEST_REQUESTS = Counter(
    "triage_ingest_requests",
    "`triage ingest` answers to POST /messages by outcome (accepted, duplicate, unauthorized, invalid, "
    "too_large, unavailable, busy)",
    ["outcome"],
)
INGEST_SECONDS = Histogram(
    "triage_ingest_seconds",
    "Time from a webhook's request to its answer, the broker's acknowledgement included",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LLM_SPEND_TODAY = Gauge(
    "triage_llm_spend_today_usd", "LLM spend since 00:00 UTC (every worker of the store), in US dollars"
)
LLM_DAILY_BUDGET = Gauge(
    "triage_llm_daily_budget_usd", "TRIAGE_LLM__DAILY_BUDGET_USD, the daily cap on LLM spend (0: none)"
)
CASCADE_DECISIONS = Counter(
    "triage_cascade_messages",
    "Messages the cascade judged, by why it asked the LLM (flagged, unsure, category) or `no`",
    ["asked"],
)

ACKNOWLEDGED = Counter(
    "triage_acknowledged", "Cases and incidents taken, by how (slack: I'm on it, zendesk: assigned)", ["how"]
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "triage_time_to_acknowledge_seconds",
    "From an alert's delivery to its first take, by urgency",
    ["urgency"],
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)
ESCALATED = Counter("triage_escalations", "Alerts not taken in time, escalated, by receiver", ["receiver"])
