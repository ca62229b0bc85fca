"""The warehouse tables: their names, keys and typed columns, the same for every target.

Types are a small vocabulary that each target maps to its own (BigQuery STRING/INT64/..., Redshift
VARCHAR/BIGINT/..., DuckDB). A column added here is added to an existing table on the next sync; no
table is ever rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["STRING", "INTEGER", "FLOAT", "BOOLEAN", "TIMESTAMP", "JSON"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str = ""


@dataclass(frozen=True)
class TableSpec:
    """`name` without the prefix (`messages` becomes `triage_messages`); `key`: the store's ids, by which a
    row synced again replaces the earlier copy; `day_column`: the TIMESTAMP the table is partitioned (or
    clustered) by day on, where the target supports it."""

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    day_column: str

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


MESSAGES = TableSpec(
    name="messages",
    key=("id",),
    day_column="received_at",
    columns=(
        Column("id", "STRING", "the message id (the input contract's `id`)"),
        Column("conversation_id", "STRING"),
        Column("channel", "STRING", "email, chat, social, review, survey, phone, ..."),
        Column("customer_id", "STRING"),
        Column("customer_tier", "STRING"),
        Column(
            "customer_key",
            "STRING",
            "one per person across channels; a sha256 digest when TRIAGE_STORE_ORIGINAL_TEXT=false",
        ),
        Column("ticket_system", "STRING"),
        Column("ticket_id", "STRING"),
        Column("created_at", "TIMESTAMP", "when the customer wrote it"),
        Column("received_at", "TIMESTAMP", "when the worker stored it"),
        Column("subject", "STRING", "null when TRIAGE_STORE_ORIGINAL_TEXT=false"),
        Column("body", "STRING", "null when TRIAGE_STORE_ORIGINAL_TEXT=false"),
        Column("body_digest", "STRING", "sha256 (hex) of the body as stored: joins without the text"),
        Column("kafka_topic", "STRING"),
        Column("kafka_partition", "INTEGER"),
        Column("kafka_offset", "INTEGER"),
        Column("survey_type", "STRING", "csat, nps or ces for a survey answer; null otherwise"),
        Column("survey_score", "INTEGER", "the survey answer's score"),
    ),
)

RESULTS = TableSpec(
    name="results",
    key=("message_id",),
    day_column="triaged_at",
    columns=(
        Column("message_id", "STRING"),
        Column("urgency", "STRING", "low, normal, high, urgent"),
        Column("sentiment", "STRING", "negative, neutral, positive"),
        Column("category", "STRING"),
        Column("language", "STRING"),
        Column("summary", "STRING", "null when TRIAGE_STORE_ORIGINAL_TEXT=false"),
        Column("confidence", "FLOAT"),
        Column("model", "STRING"),
        Column("decided_by", "STRING", "embedded, llm, or null (rules)"),
        Column("degraded", "BOOLEAN"),
        Column("prompt_tokens", "INTEGER"),
        Column("completion_tokens", "INTEGER"),
        Column("cost_usd", "FLOAT"),
        Column("receivers", "JSON", "the receivers the routing tree chose"),
        Column(
            "customer_history",
            "JSON",
            "contacts_24h, contacts_7d, channels_7d, urgent_7d, sentiment_trend, ... (customers.md)",
        ),
        Column("triaged_at", "TIMESTAMP"),
    ),
)

DELIVERIES = TableSpec(
    name="deliveries",
    key=("id",),
    day_column="created_at",
    columns=(
        Column("id", "INTEGER"),
        Column("message_id", "STRING"),
        Column("receiver", "STRING"),
        Column("conversation_id", "STRING"),
        Column("status", "STRING", "pending, sent, skipped, failed, silenced, inhibited, ..."),
        Column("detail", "STRING", "why it was skipped, failed, silenced or inhibited"),
        Column("attempts", "INTEGER"),
        Column("incident_id", "INTEGER"),
        Column("incident_seq", "INTEGER", "its case number in the incident (1: the first case)"),
        Column("created_at", "TIMESTAMP"),
        Column("sent_at", "TIMESTAMP"),
        Column("changed_at", "TIMESTAMP", "when the store last changed it (status, attempts)"),
    ),
)

INCIDENTS = TableSpec(
    name="incidents",
    key=("id",),
    day_column="first_case_at",
    columns=(
        Column("id", "INTEGER"),
        Column("uid", "STRING"),
        Column("receiver", "STRING"),
        Column("group_key", "STRING"),
        Column("mode", "STRING"),
        Column("first_case_at", "TIMESTAMP"),
        Column("last_case_at", "TIMESTAMP"),
        Column("closes_at", "TIMESTAMP"),
        Column("case_count", "INTEGER"),
        Column("ticket_count", "INTEGER"),
        Column("top_urgency", "STRING"),
        Column("summary", "STRING", "the first case's summary; null when TRIAGE_STORE_ORIGINAL_TEXT=false"),
        Column("slack_ts", "STRING", "the Slack alert's ts"),
        Column("problem_ticket_id", "STRING"),
        Column("resolved_at", "TIMESTAMP"),
        Column("changed_at", "TIMESTAMP", "when the store last changed it (cases joined, resolved)"),
    ),
)

LABELS = TableSpec(
    name="labels",
    key=("id",),
    day_column="labelled_at",
    columns=(
        Column("id", "INTEGER"),
        Column("message_id", "STRING"),
        Column("field", "STRING", "urgency, sentiment or category"),
        Column("model_value", "STRING"),
        Column("team_value", "STRING"),
        Column("source", "STRING", "slack, zendesk, gorgias, kustomer, freshdesk"),
        Column("person_id", "STRING"),
        Column("labelled_at", "TIMESTAMP", "when the person gave it"),
        Column("stored_at", "TIMESTAMP", "when the store took it in"),
    ),
)

TABLES: tuple[TableSpec, ...] = (MESSAGES, RESULTS, DELIVERIES, INCIDENTS, LABELS)
