"""The store's rows (plain rows with the store tables' column names) as warehouse rows: dicts keyed by
the columns of triage/warehouse/schema.py.

With TRIAGE_STORE_ORIGINAL_TEXT=false no free text leaves the store: subject, body and summaries are
null and the body is represented by its digest only (what the store holds then is already redacted;
the warehouse gets not even that)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.store.tables import DeliveryRow, IncidentRow, LabelRow, MessageRow, TriageRow
from triage.warehouse.targets.base import Row


def utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; the store writes UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def messages(_session: Session, rows: Sequence[MessageRow], original_text: bool) -> list[Row]:
    out = []
    for row in rows:
        parsed: dict[str, Any] = row.parsed or {}
        ticket = parsed.get("ticket") or {}
        body = parsed.get("body")
        out.append(
            {
                "id": row.id,
                "conversation_id": row.conversation_id,
                "channel": row.channel,
                "customer_id": row.customer_id,
                "customer_tier": row.customer_tier,
                "customer_key": row.customer_key,
                "ticket_system": ticket.get("system"),
                "ticket_id": row.ticket_id,
                "created_at": utc(row.created_at),
                "received_at": utc(row.received_at),
                "subject": parsed.get("subject") if original_text else None,
                "body": body if original_text else None,
                "body_digest": digest(body),
                "kafka_topic": row.kafka_topic,
                "kafka_partition": row.kafka_partition,
                "kafka_offset": row.kafka_offset,
                "survey_type": row.survey_type,
                "survey_score": row.survey_score,
            }
        )
    return out


def results(_session: Session, rows: Sequence[TriageRow], original_text: bool) -> list[Row]:
    return [
        {
            "message_id": row.message_id,
            "urgency": row.urgency,
            "sentiment": row.sentiment,
            "category": row.category,
            "language": row.language,
            "summary": row.summary if original_text else None,
            "confidence": row.confidence,
            "model": row.model,
            "decided_by": row.decided_by,
            "degraded": bool(row.degraded),
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens,
            "cost_usd": row.cost_usd,
            "receivers": list(row.receivers or []),
            "customer_history": row.customer_history,
            "triaged_at": utc(row.triaged_at),
        }
        for row in rows
    ]


def deliveries(_session: Session, rows: Sequence[DeliveryRow], _original_text: bool) -> list[Row]:
    return [
        {
            "id": row.id,
            "message_id": row.message_id,
            "receiver": row.receiver,
            "conversation_id": row.conversation_id,
            "status": row.status,
            "detail": row.detail,
            "attempts": row.attempts,
            "incident_id": row.incident_id,
            "incident_seq": row.incident_seq,
            "created_at": utc(row.created_at),
            "sent_at": utc(row.sent_at),
            "changed_at": utc(row.changed_at),
        }
        for row in rows
    ]


def incidents(session: Session, rows: Sequence[IncidentRow], original_text: bool) -> list[Row]:
    summaries: dict[int, Any] = {}
    if original_text and rows:
        first_cases = select(DeliveryRow.incident_id, DeliveryRow.payload).where(
            DeliveryRow.incident_id.in_([row.id for row in rows]), DeliveryRow.incident_seq == 1
        )
        summaries = {
            incident: (payload or {}).get("summary") for incident, payload in session.execute(first_cases)
        }
    return [
        {
            "id": row.id,
            "uid": row.uid,
            "receiver": row.receiver,
            "group_key": row.group_key,
            "mode": row.mode,
            "first_case_at": utc(row.first_case_at),
            "last_case_at": utc(row.last_case_at),
            "closes_at": utc(row.closes_at),
            "case_count": row.case_count,
            "ticket_count": row.ticket_count,
            "top_urgency": row.top_urgency,
            "summary": summaries.get(row.id),
            "slack_ts": row.slack_ts,
            "problem_ticket_id": row.problem_ticket_id,
            "resolved_at": utc(row.resolved_at),
            "changed_at": utc(row.changed_at),
        }
        for row in rows
    ]


def labels(_session: Session, rows: Sequence[LabelRow], _original_text: bool) -> list[Row]:
    return [
        {
            "id": row.id,
            "message_id": row.message_id,
            "field": row.field,
            "model_value": row.model_value,
            "team_value": row.team_value,
            "source": row.source,
            "person_id": row.person_id,
            "labelled_at": utc(row.labelled_at),
            "stored_at": utc(row.stored_at),
        }
        for row in rows
    ]
