"""One settings object for everything a worker needs.

Sources, highest priority first: keyword arguments, `TRIAGE_*` environment variables (nested with
`__`), a `.env` file, the YAML file named by `TRIAGE_CONFIG` (default `config/triage.yaml`), defaults.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

DEFAULT_CONFIG_FILE = "config/triage.yaml"
DEFAULT_ROUTING_FILE = Path("config/routing.yaml")
DEFAULT_CATEGORIES_FILE = Path("config/categories.yaml")


class Section(BaseModel):
    """A nested settings group; unknown keys are a mistake worth reporting."""

    model_config = ConfigDict(extra="forbid")


class KafkaSettings(Section):
    bootstrap_servers: str = Field(
        "",
        description=(
            "host:port[,host:port]; required by `run`, `produce` and `dlq`; `demo` embeds a broker when unset"
        ),
    )
    group_id: str = Field(
        "triage", min_length=1, description="consumer group; run more workers with the same id to scale out"
    )
    input_topic: str = Field("support.messages", min_length=1, description="where messages are read")
    results_topic: str = Field(
        "support.triaged", min_length=1, description="one record per processed message"
    )
    dlq_topic: str = Field(
        "support.messages.dlq",
        min_length=1,
        description="records that could not be processed, with the reason",
    )
    session_timeout_ms: int = Field(
        10_000, ge=1000, description="consumer group session timeout (the embedded broker wants 2000)"
    )
    heartbeat_interval_ms: int = Field(
        3_000, ge=100, description="consumer heartbeat (the embedded broker wants 300)"
    )
    max_poll_records: int = Field(500, ge=1, description="records per poll at most")
    poll_timeout_ms: int = Field(
        500, ge=10, description="longest wait of one poll (50 ms while messages are in flight)"
    )
    bootstrap_timeout_ms: int = Field(
        10_000,
        ge=100,
        description=(
            "how long `run`, `demo`, `produce` and `dlq` wait for a first broker before they stop with "
            "one `error:` line"
        ),
    )
    create_topics: bool = Field(True, description="create missing topics at start (Tansu has no auto-create)")
    partitions: int = Field(6, ge=1, description="partitions for topics the worker creates")
    replication_factor: int = Field(1, ge=1, description="for topics the worker creates")
    client: dict[str, Any] = Field(
        default_factory=dict,
        description="extra kafka-python settings passed through (security_protocol, sasl_*, fetch sizes)",
    )
    results_format: Literal["json", "avro", "protobuf"] = Field(
        "json",
        description=(
            "the results topic's values: `json`, or `avro` / `protobuf` in the schema registry's wire "
            "format, "
            "the schema registered under `<results_topic>-value` (needs TRIAGE_SCHEMA_REGISTRY__URL)"
        ),
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _hosts_have_ports(cls, value: str) -> str:
        for server in filter(None, (part.strip() for part in value.split(","))):
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return value.strip()


class ClassifierSettings(Section):
    backend: Literal["rules", "embedded", "llm", "cascade"] = Field(
        "embedded",
        description=(
            "`embedded` (offline model), `llm` (OpenAI-compatible), `cascade` (the embedded model, and the "
            "LLM where its answer can change who is woken or where a case goes), `rules` (keyword baseline)"
        ),
    )
    model_dir: Path | None = Field(
        None, description="heads from `triage train`; heads missing there come from the package"
    )
    fallback: Literal["embedded", "rules"] = Field(
        "embedded",
        description=(
            "what classifies (with `degraded: true`) when the LLM is unavailable: `embedded` or `rules`"
        ),
    )
    categories_file: Path = Field(
        DEFAULT_CATEGORIES_FILE,
        description="the categories: name, description, examples; outside a checkout the packaged copy",
    )
    categories: list[str] | None = Field(
        None,
        min_length=1,
        description=(
            "a selection of the categories file's names; unset: all of them; a name not in the file stops"
            " start-up"
        ),
    )

    def categories_path(self) -> Path:
        """The categories file; when the default path does not exist here (the worker runs outside a
        checkout), the file shipped in the package, which matches config/categories.yaml."""
        if self.categories_file == DEFAULT_CATEGORIES_FILE and not self.categories_file.exists():
            return Path(__file__).parent / "defaults" / "categories.yaml"
        return self.categories_file


class Price(Section):
    """US dollars per million tokens."""

    input: float = Field(ge=0, description="per million prompt tokens")
    output: float = Field(ge=0, description="per million completion tokens")
    cached_input: float | None = Field(
        None, ge=0, description="per million prompt tokens served from the cache; unset: the input price"
    )


class LLMSettings(Section):
    base_url: str = Field(
        "https://api.openai.com/v1",
        description="any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp server)",
    )
    api_key: str = Field("", description="the key sent to that server")
    model: str = Field(
        "gpt-4o-mini", description="the model asked, and the row of `prices` used for the cost"
    )
    timeout_s: float = Field(20.0, gt=0, description="one HTTP call")
    max_attempts: int = Field(4, ge=1, description="calls per message, retries on 429, 5xx and timeouts")
    max_retry_time_s: float = Field(30.0, gt=0, description="total time one message may spend retrying")
    response_format: Literal["json_schema", "json_object"] = Field(
        "json_schema", description="json_object for servers without structured outputs"
    )
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature of every call")
    breaker_failures: int = Field(5, ge=1, description="consecutive failures that open the circuit")
    breaker_cooldown_s: float = Field(30.0, gt=0, description="how long an open circuit skips the LLM")
    prices: dict[str, Price] = Field(
        default_factory=lambda: {
            "gpt-4o-mini": Price(input=0.15, output=0.60, cached_input=0.075),
            "gpt-4o": Price(input=2.50, output=10.00, cached_input=1.25),
            "gpt-4.1-mini": Price(input=0.40, output=1.60, cached_input=0.10),
        },
        description=(
            "USD per million input, cached input and output tokens, by model name; a model not listed costs 0"
        ),
    )
    examples: int = Field(
        8,
        ge=0,
        le=50,
        description=(
            "the team's labelled messages most similar to the one judged (corrections and confirmations "
            "in the store, the categories file's examples) put in the prompt; 0: none"
        ),
    )
    examples_tokens: int = Field(
        1200, ge=0, description="the most tokens (about 4 characters each) those examples may take"
    )
    daily_budget_usd: float | None = Field(
        None,
        gt=0,
        description=(
            "LLM spend per UTC day (all workers of the store together); past it the embedded model "
            "answers (degraded) until the next day; unset: no cap"
        ),
    )


class CascadeSettings(Section):
    ask_below: float = Field(
        0.9,
        ge=0,
        le=1,
        description=(
            "the `cascade` asks the LLM when the embedded model's confidence in its urgency call is below "
            "this (and always when it calls a message high or urgent)"
        ),
    )
    category_below: float = Field(
        0.15,
        ge=0,
        le=1,
        description=(
            "the `cascade` asks the LLM when the embedded model's probability for its category is below "
            "this and that category, or the runner-up, is one the routing file matches on"
        ),
    )


class SlackSettings(Section):
    token: str = Field(
        "", description="Slack Web API bot token; without it Slack deliveries are skipped and counted"
    )
    base_url: str = Field("https://slack.com/api/", description="the Slack Web API")
    app_token: str = Field(
        "",
        description=(
            "the Slack app's app-level token (xapp-..., scope connections:write): alerts carry feedback "
            "buttons and the worker receives the clicks through a Socket Mode connection; empty: no buttons"
        ),
    )


class HelpdeskSettings(Section):
    base_url: str = Field(
        "",
        description=(
            "Zendesk API, e.g. https://acme.zendesk.com; tickets with `ticket.system: zendesk` are written "
            "there (empty: skipped and counted)"
        ),
    )
    email: str = Field("", description="the Zendesk agent's e-mail (basic auth `email/token:api_token`)")
    api_token: str = Field("", description="the Zendesk API token")


class PagerDutySettings(Section):
    events_url: str = Field(
        "https://events.pagerduty.com/v2/enqueue",
        description="PagerDuty's Events API v2; each `pagerduty` receiver names its routing key's variable",
    )


class SMTPSettings(Section):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str = Field(
        "", description="the SMTP server of `email` receivers; empty: their deliveries are skipped"
    )
    port: int = Field(587, ge=1, le=65535, description="587 with STARTTLS, 25 without")
    username: str = Field("", description="login; empty: no login")
    password: str = Field("", description="the login's password")
    starttls: bool = Field(True, description="upgrade the connection with STARTTLS before logging in")
    from_: str = Field("triage@localhost", alias="from", description="the From address of alert e-mails")


class GorgiasSettings(Section):
    base_url: str = Field(
        "",
        description=(
            "Gorgias API, e.g. https://acme.gorgias.com; tickets with `ticket.system: gorgias` are written "
            "there (empty: skipped and counted)"
        ),
    )
    email: str = Field("", description="the Gorgias user's e-mail (basic auth `email:api_key`)")
    api_key: str = Field("", description="that user's Gorgias REST API key")


class KustomerSettings(Section):
    base_url: str = Field(
        "",
        description=(
            "Kustomer API, e.g. https://acme.api.kustomerapp.com; conversations with `ticket.system: "
            "kustomer` are written there (empty: skipped and counted)"
        ),
    )
    api_key: str = Field("", description="a Kustomer API key (sent as `Authorization: Bearer`)")


class FreshdeskSettings(Section):
    base_url: str = Field(
        "",
        description=(
            "Freshdesk API, e.g. https://acme.freshdesk.com; tickets with `ticket.system: freshdesk` are "
            "written there (empty: skipped and counted)"
        ),
    )
    api_key: str = Field("", description="the Freshdesk agent's API key (basic auth `api_key:X`)")


class FeedbackSettings(Section):
    enabled: bool = Field(
        True,
        description=(
            "the team's corrections as labels: buttons on Slack alerts (received through Socket Mode) and "
            "priority or category_* tag changes read from the helpdesks (Zendesk's ticket events, the "
            "others' updated tickets); false: no buttons, no Socket Mode connection, no helpdesk changes "
            "read, nothing stored about who corrected what"
        ),
    )
    zendesk_poll_s: float = Field(
        60.0,
        ge=1,
        description=(
            "seconds between reads of Zendesk's incremental ticket events once a read reached the end "
            "(Zendesk allows 10 requests a minute to its export endpoints)"
        ),
    )
    helpdesk_poll_s: float = Field(
        60.0,
        ge=1,
        description="seconds between reads of Gorgias, Kustomer and Freshdesk changes (agents' corrections)",
    )


class InputSettings(Section):
    mapping: Path | None = Field(
        None,
        description=(
            "a YAML file mapping each message field to a JMESPath expression over the incoming value "
            "(docs/input.md); checked at start"
        ),
    )
    preset: Literal["debezium", "cloudevents"] | None = Field(
        None,
        description="`debezium` (a row's change events) or `cloudevents` (structured or binary mode)",
    )


class SchemaRegistrySettings(Section):
    url: str = Field(
        "",
        description=(
            "a Confluent-compatible schema registry; values in its wire format (Avro, Protobuf, JSON Schema) "
            "are decoded with the schema they name"
        ),
    )
    username: str = Field("", description="basic auth user (Confluent Cloud: the API key)")
    password: str = Field("", description="basic auth password (Confluent Cloud: the API secret)")
    token: str = Field("", description="a bearer token, instead of a username and password")
    ca_file: Path | None = Field(None, description="CA bundle for the registry's TLS certificate")
    cert_file: Path | None = Field(None, description="client certificate, for mutual TLS")
    key_file: Path | None = Field(None, description="the client certificate's key, for mutual TLS")
    verify_tls: bool = Field(True, description="false: do not check the registry's certificate (tests only)")
    timeout_s: float = Field(10.0, gt=0, description="one request to the registry")


class HTTPSettings(Section):
    port: int = Field(
        8080, ge=0, le=65535, description="`/healthz`, `/readyz`, `/metrics`; 0 picks a free port"
    )


class IngestSettings(Section):
    port: int = Field(
        8090,
        ge=0,
        le=65535,
        description="`triage ingest`: `POST /messages`, `/healthz`, `/readyz`, `/metrics`",
    )
    token: str = Field(
        "",
        description=(
            "the bearer token helpdesks other than Zendesk send (`Authorization: Bearer ...`); empty: no "
            "bearer token is accepted"
        ),
    )
    zendesk_signing_secret: str = Field(
        "",
        description=(
            "the Zendesk webhook's signing secret, to check `X-Zendesk-Webhook-Signature`; empty: no Zendesk "
            "signature is accepted"
        ),
    )
    signature_max_age_s: float = Field(
        300.0,
        gt=0,
        description="a Zendesk signature timestamp further than this from now is refused (replays)",
    )
    max_request_bytes: int = Field(
        1_000_000,
        ge=1024,
        le=1_000_000,
        description="larger requests are refused with 413 (Kafka's default record limit is 1 MB)",
    )
    ack_timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="longest wait for the broker's acknowledgement before 503 (Zendesk gives up after 10 s)",
    )
    retry_after_s: int = Field(10, ge=1, description="the Retry-After of a 503 answer")
    dedup_window_s: float = Field(
        86_400.0, gt=0, description="a message id sent again within this time produces no second record"
    )


class StoreSettings(Section):
    retention_days: int | None = Field(
        None,
        ge=1,
        description=(
            "rows older than this many days leave the store once they are in the warehouse (never before); "
            "unset: kept for ever"
        ),
    )


class WarehouseSettings(Section):
    url: str = Field(
        "",
        description=(
            "where `triage warehouse sync` copies the store: `bigquery://PROJECT/DATASET`, "
            "`redshift://USER@HOST:PORT/DB`, `duckdb:///cx.duckdb` or `parquet:///DIR` (empty: no sync)"
        ),
    )
    interval_s: float = Field(
        0.0, ge=0, description="the worker syncs every this many seconds (0: only `triage warehouse sync`)"
    )
    table_prefix: str = Field("triage_", description="prefix of the warehouse tables (`triage_messages`)")
    batch_size: int = Field(5000, ge=1, description="rows per load job or transaction")
    timeout_s: float = Field(
        60.0, gt=0, description="BigQuery/Redshift: longest wait for one call or job, retries included"
    )
    bigquery_credentials_file: str = Field(
        "", description="a service-account key file; empty: application default credentials"
    )
    bigquery_endpoint: str = Field(
        "", description="the BigQuery API root (an emulator or private endpoint); empty: Google's"
    )
    bigquery_anonymous: bool = Field(
        False, description="send no credentials (an emulator or a local stand-in)"
    )
    redshift_password: str = Field(
        "", description="the Redshift user's password (from the environment); unused with IAM"
    )
    redshift_schema: str = Field("public", min_length=1, description="the Redshift schema of the tables")
    redshift_ssl: bool = Field(True, description="connect to Redshift over TLS")
    redshift_iam: bool = Field(
        False, description="get temporary Redshift credentials through IAM instead of a password"
    )
    redshift_cluster_identifier: str = Field("", description="with IAM: the cluster's identifier")
    redshift_region: str = Field("", description="with IAM: the cluster's AWS region")
    redshift_profile: str = Field("", description="with IAM: the AWS profile (empty: the default chain)")


class HistorySettings(Section):
    enabled: bool = Field(
        True, description="each case carries the customer's history (contacts, channels, mood)"
    )


class WorkerSettings(Section):
    concurrency: int = Field(32, ge=1, le=1024, description="messages handled at once (one per conversation)")
    max_in_flight: int | None = Field(
        None,
        ge=1,
        description="fetched but unfinished messages before fetching pauses (default 16 x concurrency)",
    )
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="on SIGTERM, time to finish in-flight work and flush the outbox"
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1, description="larger bodies are dead-lettered as `body_too_large`"
    )
    retry_backoff_s: float = Field(1.0, gt=0, description="first wait after a transient failure")
    retry_backoff_max_s: float = Field(30.0, gt=0, description="longest wait after a transient failure")
    delivery_lease_s: float = Field(
        60.0, gt=0, description="a claimed delivery not finished in this time is taken over (its sender died)"
    )


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG also shows the Kafka client's own log lines"
    )
    format: Literal["json", "text"] | None = Field(
        None,
        description=(
            "`json`: one object per line, with message and conversation ids, never message text; `text`: "
            "timestamped lines with the same ids; unset: text when standard error is a terminal, else JSON"
        ),
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRIAGE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="the broker, topics and consumer")
    database_url: str = Field(
        "sqlite:///triage.db",
        description=(
            "the store: `sqlite:///FILE`, or `postgresql://user:pass@host:5432/db` in production; "
            "migrated on start"
        ),
    )
    routing_file: Path = Field(
        DEFAULT_ROUTING_FILE,
        description="the route tree; outside a checkout the default path falls back to the packaged example",
    )
    classifier: ClassifierSettings = Field(
        default_factory=ClassifierSettings, description="which model judges the messages"
    )
    llm: LLMSettings = Field(default_factory=LLMSettings, description="the `llm` backend's server")
    cascade: CascadeSettings = Field(
        default_factory=CascadeSettings, description="when the `cascade` backend asks the LLM"
    )
    slack: SlackSettings = Field(default_factory=SlackSettings, description="Slack receivers")
    helpdesk: HelpdeskSettings = Field(default_factory=HelpdeskSettings, description="helpdesk receivers")
    pagerduty: PagerDutySettings = Field(default_factory=PagerDutySettings, description="PagerDuty receivers")
    smtp: SMTPSettings = Field(default_factory=SMTPSettings, description="e-mail receivers")

    gorgias: GorgiasSettings = Field(default_factory=GorgiasSettings, description="Gorgias write-back")
    kustomer: KustomerSettings = Field(default_factory=KustomerSettings, description="Kustomer write-back")
    freshdesk: FreshdeskSettings = Field(
        default_factory=FreshdeskSettings, description="Freshdesk write-back"
    )
    feedback: FeedbackSettings = Field(
        default_factory=FeedbackSettings, description="the team's corrections from Slack and the helpdesk"
    )
    input: InputSettings = Field(
        default_factory=InputSettings, description="the shape of the input topic's values"
    )
    schema_registry: SchemaRegistrySettings = Field(
        default_factory=SchemaRegistrySettings, description="where Avro / Protobuf / JSON Schema schemas live"
    )
    http: HTTPSettings = Field(default_factory=HTTPSettings, description="the health and metrics server")
    ingest: IngestSettings = Field(
        default_factory=IngestSettings, description="`triage ingest`, the webhook endpoint helpdesks post to"
    )
    store: StoreSettings = Field(default_factory=StoreSettings, description="how long the store keeps rows")
    warehouse: WarehouseSettings = Field(
        default_factory=WarehouseSettings, description="the team's warehouse, kept in step with the store"
    )
    history: HistorySettings = Field(
        default_factory=HistorySettings, description="the customer's history across channels"
    )
    worker: WorkerSettings = Field(default_factory=WorkerSettings, description="concurrency, limits, retries")
    log: LogSettings = Field(default_factory=LogSettings, description="the log's level and format")
    store_original_text: bool = Field(
        True,
        description="false: nothing unredacted reaches the store (free text redacted, no customer e-mail)",
    )

    def routing_path(self) -> Path:
        """The routing file; when the default path does not exist here (the worker runs outside a
        checkout), the example tree shipped in the package, which matches config/routing.yaml."""
        if self.routing_file == DEFAULT_ROUTING_FILE and not self.routing_file.exists():
            return Path(__file__).parent / "defaults" / "routing.yaml"
        return self.routing_file

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        """SQLite, or PostgreSQL through psycopg 3 (the driver installed): `postgresql://` and
        `postgres://` mean `postgresql+psycopg://`."""
        scheme, sep, rest = value.partition("://")
        if scheme in ("postgresql", "postgres"):
            return f"postgresql+psycopg://{rest}"
        if not sep or scheme not in ("sqlite", "postgresql+psycopg"):
            raise ValueError(
                "must start with sqlite:/// (a file) or postgresql:// (also written postgresql+psycopg://)"
            )
        if value in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError("an in-memory SQLite database is not shared between threads; name a file")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("TRIAGE_CONFIG", DEFAULT_CONFIG_FILE)
        yaml_settings = YamlConfigSettingsSource(settings_cls, yaml_file=config_file)
        return init_settings, ReadableEnv(settings_cls), ReadableDotEnv(settings_cls), yaml_settings


class UnreadableVariable(ValueError):
    """A JSON setting (a mapping or a list) whose value does not parse; names the variable."""


class _ReadableDecoding:
    """For the environment and .env sources: a list setting also takes `a, b, c`, and a JSON value that
    does not parse is blamed on its variable, not on a source."""

    env_vars: typing.Mapping[str, str | None]

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)  # type: ignore[misc]
        except ValueError as error:
            text = str(value).strip()
            if field is not None and _is_list(field.annotation) and not text.startswith("["):
                return [part.strip() for part in text.split(",") if part.strip()]
            example = '["a", "b"] or a, b' if field and _is_list(field.annotation) else '{"key": "value"}'
            raise UnreadableVariable(
                f"{self._variable(field_name, value)}: not valid JSON ({error}); expected e.g. {example}"
            ) from None

    def _variable(self, field_name: str, value: Any) -> str:
        for name, candidate in self.env_vars.items():
            if candidate == value and name.lower().endswith(field_name.lower()):
                return name.upper()
        return f"TRIAGE_{field_name.upper()}"


def _is_list(annotation: Any) -> bool:
    """`list[str]`, or `list[str] | None`."""
    if typing.get_origin(annotation) is list:
        return True
    return any(typing.get_origin(arg) is list for arg in typing.get_args(annotation))


class ReadableEnv(_ReadableDecoding, EnvSettingsSource):
    pass


class ReadableDotEnv(_ReadableDecoding, DotEnvSettingsSource):
    pass


class SettingsError(Exception):
    """Settings that cannot be used; the message is one line naming the setting."""


def describe_validation_error(error: ValidationError) -> str:
    """`TRIAGE_KAFKA__SESSION_TIMEOUT_MS (kafka.session_timeout_ms): Input should be ...` for each error."""
    parts = []
    for item in error.errors():
        path = [str(p) for p in item["loc"]]
        env_name = "TRIAGE_" + "__".join(p.upper() for p in path)
        value = item.get("input")
        shown = f" (got {value!r})" if isinstance(value, str | int | float) and len(repr(value)) < 80 else ""
        parts.append(f"{env_name} ({'.'.join(path)}): {item['msg'].removeprefix('Value error, ')}{shown}")
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings, raising SettingsError with one readable line."""
    config_file = os.environ.get("TRIAGE_CONFIG")
    if config_file and not Path(config_file).is_file():
        raise SettingsError(f"TRIAGE_CONFIG: file {config_file!r} does not exist")
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError("invalid setting: " + describe_validation_error(error)) from None
    except SourceError as error:
        if isinstance(error.__cause__, UnreadableVariable):
            raise SettingsError(f"invalid setting: {error.__cause__}") from None
        raise SettingsError(f"invalid setting: {error}: {error.__cause__}") from None
    except (OSError, ValueError, yaml.YAMLError) as error:  # an unreadable or malformed YAML file
        mark = getattr(error, "problem_mark", None)
        where = f"{config_file or DEFAULT_CONFIG_FILE}" + (f":{mark.line + 1}" if mark else "")
        reason = getattr(error, "problem", None) or " ".join(str(error).split())
        raise SettingsError(f"cannot read settings from {where}: {reason}") from None
