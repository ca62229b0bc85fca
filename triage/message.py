"""The input message (the Kafka value) and the Triage result, plus strict parsing of raw records."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

Urgency = Literal["low", "normal", "high", "urgent"]
Sentiment = Literal["negative", "neutral", "positive"]
URGENCY_ORDER: tuple[str, ...] = ("low", "normal", "high", "urgent")


def alert_priority(urgency: str | None) -> int:
    """The order in which alerts waiting for a rate-limited channel go out: urgent, then high, then
    the rest (normal and low alike), each by age. The scale is the earlier urgency rank's (urgent 3,
    high 2), so alerts stored by an earlier release and still waiting keep their place."""
    return {"urgent": 3, "high": 2}.get(urgency or "", 1)


class Lenient(BaseModel):
    """Unknown fields are ignored, as the contract says; they stay in the stored raw JSON."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_absent(cls, value: Any, info: ValidationInfo) -> Any:
        """Producers (Debezium, Kafka Connect, ORMs) write absent fields as null: an explicit null in an
        optional field means "absent" and gets the field's default. Required fields stay required."""
        if value is None:
            field = cls.model_fields[info.field_name]
            if not field.is_required():
                return field.get_default(call_default_factory=True)
        return value


class Customer(Lenient):
    id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None  # any punctuation; matched on its digits (triage/customers.py)
    tier: str | None = None


class Ticket(Lenient):
    system: str | None = None
    id: int | str | None = None
    url: str | None = None


SurveyType = Literal["csat", "nps", "ces"]
# The usual scales (docs/report.md, "CX scores"): CSAT 1-5 (satisfied: 4-5), NPS 0-10 (detractors 0-6,
# passives 7-8, promoters 9-10), CES 1-7 ("the company made it easy", 7: strongly agree).
SURVEY_SCALES: dict[str, tuple[int, int]] = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}


class Survey(Lenient):
    """A survey answer's score; the answer's comment is the message's body (which may then be empty)."""

    type: SurveyType
    score: int

    @field_validator("type", mode="before")
    @classmethod
    def _type_any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("score", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"a score is a whole number, got {str(value).lower()}")
        return value

    @field_validator("score")
    @classmethod
    def _on_scale(cls, value: int, info: ValidationInfo) -> int:
        kind = info.data.get("type")
        if kind in SURVEY_SCALES:
            low, high = SURVEY_SCALES[kind]
            if not low <= value <= high:
                raise ValueError(f"{kind.upper()} scores are {low} to {high}, got {value}")
        return value


class SupportMessage(Lenient):
    id: str = Field(min_length=1, max_length=256)
    survey: Survey | None = None  # before body: an empty body is allowed for a survey answer
    body: str
    conversation_id: str | None = Field(None, max_length=256)
    subject: str | None = None
    channel: str | None = Field(None, description="email, chat, social, review, survey, phone, ...")
    created_at: datetime | None = None
    customer: Customer = Field(default_factory=Customer)
    ticket: Ticket | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _survey_body(cls, data: Any) -> Any:
        """A survey answer without a comment may leave the body out."""
        if isinstance(data, dict) and data.get("survey") is not None and data.get("body") is None:
            return {**data, "body": ""}
        return data

    @field_validator("body")
    @classmethod
    def _body_has_text(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip() and info.data.get("survey") is None:
            raise ValueError("body is empty")
        return value

    @property
    def conversation_key(self) -> str:
        """Conversation used for ordering and threading; a lone message is its own conversation."""
        return self.conversation_id or self.id


class Triage(BaseModel):
    """A classifier's judgement of one message."""

    urgency: Urgency
    sentiment: Sentiment
    category: str
    language: str = Field(min_length=2, max_length=8)
    summary: str = Field(max_length=200)
    confidence: float = Field(ge=0.0, le=1.0)
    model: str
    decided_by: Literal["embedded", "llm"] | None = None  # which kind of model made the call (None: rules)
    degraded: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class InvalidMessage(Exception):
    """A record that cannot become a SupportMessage. `code` is a short label for metrics and DLQ headers."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def parse_message(value: bytes | None, max_body_bytes: int) -> SupportMessage:
    """Turn a Kafka value into a validated message, or raise InvalidMessage naming the problem."""
    if not value:
        raise InvalidMessage("empty_value", "the record has no value")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidMessage("invalid_utf8", f"not UTF-8 at byte {error.start}: {error.reason}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidMessage(
            "invalid_json", f"{error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    return message_from_document(document, max_body_bytes)


def message_from_document(document: Any, max_body_bytes: int) -> SupportMessage:
    """A decoded value (JSON, or Avro/Protobuf/mapped) checked as the message contract."""
    if not isinstance(document, dict):
        raise InvalidMessage("not_an_object", f"expected a JSON object, got {type(document).__name__}")
    if problem := unpaired_surrogate(document):
        raise InvalidMessage("invalid_unicode", problem)
    body = document.get("body")
    if isinstance(body, str) and len(body.encode("utf-8")) > max_body_bytes:
        size = len(body.encode("utf-8"))
        raise InvalidMessage("body_too_large", f"body is {size} bytes, the limit is {max_body_bytes}")
    try:
        return SupportMessage.model_validate(document)
    except ValidationError as error:
        raise InvalidMessage("invalid_schema", _describe(error)) from None


SURROGATE = re.compile(r"[\ud800-\udfff]")


def unpaired_surrogate(value: Any, path: str = "") -> str | None:
    """`body: unpaired surrogate \\ud83d at character 18` for the first string (key or value, at any
    depth) holding half of a UTF-16 pair: valid JSON syntax (`"\\ud83d"`), but not text that can be
    encoded, stored or sent."""
    if isinstance(value, str):
        found = SURROGATE.search(value)
        if found:
            code = f"\\u{ord(found[0]):04x}"
            return f"{path or 'value'}: unpaired surrogate {code} at character {found.start()}"
    elif isinstance(value, dict):
        for key, item in value.items():
            shown = SURROGATE.sub(lambda found: f"\\u{ord(found[0]):04x}", key)  # the detail must encode
            where = f"{path}.{shown}" if path else shown
            if problem := unpaired_surrogate(key, f"{where} (the key)") or unpaired_surrogate(item, where):
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if problem := unpaired_surrogate(item, f"{path}.{index}" if path else str(index)):
                return problem
    return None


def _describe(error: ValidationError) -> str:
    """`body: Field required; channel: Input should be 'email', ...` without pydantic's URLs."""
    parts = []
    errors = error.errors()
    bad_survey = any(item["loc"][:1] == ("survey",) for item in errors)
    for item in errors:
        if bad_survey and item["loc"] == ("body",) and item["msg"].endswith("body is empty"):
            continue  # the body may be empty because a survey was given: its problem is the one to name
        field = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{field}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
