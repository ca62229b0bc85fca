"""BigQuery target (`bigquery://PROJECT/DATASET`) through the official google-cloud-bigquery client.

A batch is one load job (newline-delimited JSON through the REST upload, not streaming inserts) into a
staging table that expires by itself, then one MERGE by key into the table, then the staging table is
dropped: a batch loaded again after a crash updates the same keys, so each key stays once. Tables are
partitioned by day on the spec's day column and clustered by the key; a new column is added to the
schema with tables.patch, never by rebuilding the table.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from google.api_core import exceptions as api
from google.api_core.client_options import ClientOptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, DEFAULT_RETRY

from triage.warehouse.schema import Column, TableSpec
from triage.warehouse.targets.base import Row, WarehouseUnavailable

if TYPE_CHECKING:
    from triage.settings import WarehouseSettings

TYPES = {
    "STRING": "STRING",
    "INTEGER": "INTEGER",
    "FLOAT": "FLOAT",
    "BOOLEAN": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMP",
    "JSON": "JSON",
}
TRANSIENT_REASONS = {"rateLimitExceeded", "quotaExceeded", "backendError", "internalError", "badGateway"}
STAGING_LIFETIME = timedelta(hours=6)  # a staging table left by a crash goes by itself


def open(url: str, settings: WarehouseSettings) -> BigQueryTarget:
    parts = urlsplit(url)
    project, dataset = parts.netloc, parts.path.strip("/")
    if not project or not dataset or "/" in dataset:
        raise ValueError(f"warehouse URL {url!r}: expected bigquery://PROJECT/DATASET")
    return BigQueryTarget(project, dataset, settings)


class BigQueryTarget:
    def __init__(self, project: str, dataset: str, settings: WarehouseSettings) -> None:
        self.project, self.dataset = project, dataset
        self.prefix = settings.table_prefix
        self.timeout_s = settings.timeout_s
        self._retry: Retry = DEFAULT_RETRY.with_deadline(settings.timeout_s)
        self._job_retry: Retry = DEFAULT_JOB_RETRY.with_deadline(settings.timeout_s)
        self.client = bigquery.Client(
            project=project,
            credentials=_credentials(settings),
            client_options=ClientOptions(api_endpoint=settings.bigquery_endpoint or None),
        )
        with self._errors("reading the dataset"):
            self.client.get_dataset(f"{project}.{dataset}", retry=self._retry, timeout=self.timeout_s)

    def table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{self.prefix}{name}"

    def ensure_table(self, spec: TableSpec) -> None:
        table_id = self.table_id(spec.name)
        with self._errors(f"creating {table_id}"):
            try:
                table = self.client.get_table(table_id, retry=self._retry, timeout=self.timeout_s)
            except api.NotFound:
                table = bigquery.Table(table_id, schema=[_field(column) for column in spec.columns])
                table.time_partitioning = bigquery.TimePartitioning(
                    type_=bigquery.TimePartitioningType.DAY, field=spec.day_column
                )
                table.clustering_fields = list(spec.key[:4])
                try:
                    self.client.create_table(table, retry=self._retry, timeout=self.timeout_s)
                    return
                except api.Conflict:  # another worker made it meanwhile
                    table = self.client.get_table(table_id, retry=self._retry, timeout=self.timeout_s)
            have = {field.name for field in table.schema}
            missing = [_field(column) for column in spec.columns if column.name not in have]
            if missing:
                table.schema = [*table.schema, *missing]
                self.client.update_table(table, ["schema"], retry=self._retry, timeout=self.timeout_s)

    def upsert(self, spec: TableSpec, rows: Sequence[Row]) -> None:
        if not rows:
            return
        latest = {tuple(row[name] for name in spec.key): row for row in rows}  # MERGE wants one per key
        names = [column.name for column in spec.columns]
        lines = "\n".join(
            json.dumps({name: _value(row.get(name)) for name in names}, ensure_ascii=False)
            for row in latest.values()
        ).encode()
        staging_id = f"{self.table_id(spec.name)}__staging_{uuid.uuid4().hex[:12]}"
        with self._errors(f"loading into {self.table_id(spec.name)}"):
            staging = bigquery.Table(staging_id, schema=[_field(column) for column in spec.columns])
            staging.expires = datetime.now(UTC) + STAGING_LIFETIME
            self.client.create_table(staging, retry=self._retry, timeout=self.timeout_s)
            try:
                self._load(staging_id, spec, lines)
                self._merge(spec, staging_id)
            finally:
                with contextlib.suppress(api.GoogleAPICallError, requests.RequestException):
                    self.client.delete_table(
                        staging_id, not_found_ok=True, retry=self._retry, timeout=self.timeout_s
                    )

    def _load(self, staging_id: str, spec: TableSpec, lines: bytes) -> None:
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            schema=[_field(column) for column in spec.columns],
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
        )
        job = self.client.load_table_from_file(
            io.BytesIO(lines),
            staging_id,
            size=len(lines),
            num_retries=2,
            job_config=config,
            timeout=self.timeout_s,
        )
        job.result(retry=self._retry, timeout=self.timeout_s)

    def _merge(self, spec: TableSpec, staging_id: str) -> None:
        job = self.client.query(
            merge_sql(spec, self.table_id(spec.name), staging_id),
            retry=self._retry,
            job_retry=self._job_retry,
            timeout=self.timeout_s,
        )
        job.result(retry=self._retry, timeout=self.timeout_s)

    def close(self) -> None:
        self.client.close()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """BigQuery's answers as the sync wants them: passing trouble is WarehouseUnavailable, the rest
        one line naming the problem."""
        where = f"BigQuery {self.project}.{self.dataset}"
        try:
            yield
        except (api.TooManyRequests, api.ServerError, api.RetryError) as error:
            raise WarehouseUnavailable(f"{where}: {doing}: {_message(error)}") from error
        except (
            requests.ConnectionError,
            requests.Timeout,
            auth_errors.TransportError,
            concurrent.futures.TimeoutError,
        ) as error:
            raise WarehouseUnavailable(f"{where}: {doing}: no answer ({error})") from error
        except auth_errors.RefreshError as error:
            if error.retryable:
                raise WarehouseUnavailable(f"{where}: {doing}: getting a token: {error}") from error
            raise RuntimeError(
                f"{where}: {doing}: credentials refused when getting a token ({error})"
            ) from error
        except auth_errors.GoogleAuthError as error:  # e.g. a 401 to anonymous credentials
            raise RuntimeError(f"{where}: {doing}: credentials refused ({error})") from error
        except api.Forbidden as error:
            if _reason(error) in TRANSIENT_REASONS:
                raise WarehouseUnavailable(f"{where}: {doing}: {_message(error)}") from error
            raise RuntimeError(
                f"{where}: {doing}: forbidden ({_message(error)}); the credentials need BigQuery Data "
                f"Editor on the dataset and BigQuery Job User on project {self.project}"
            ) from error
        except api.Unauthorized as error:
            raise RuntimeError(f"{where}: {doing}: credentials refused ({_message(error)})") from error
        except api.NotFound as error:
            raise RuntimeError(
                f"{where}: {doing}: not found ({_message(error)}); create the dataset first "
                f"(bq mk --dataset {self.project}:{self.dataset})"
            ) from error
        except api.GoogleAPICallError as error:
            raise RuntimeError(f"{where}: {doing}: {_message(error)}") from error


def merge_sql(spec: TableSpec, table_id: str, staging_id: str) -> str:
    """Replace each staged key's row or insert it: the one statement a batch needs."""
    names = [column.name for column in spec.columns]
    on = " AND ".join(f"T.`{name}` = S.`{name}`" for name in spec.key)
    update = ", ".join(f"`{name}` = S.`{name}`" for name in names if name not in spec.key)
    columns = ", ".join(f"`{name}`" for name in names)
    values = ", ".join(f"S.`{name}`" for name in names)
    return (
        f"MERGE `{table_id}` AS T\n"
        f"USING `{staging_id}` AS S\n"
        f"ON {on}\n"
        f"WHEN MATCHED THEN UPDATE SET {update}\n"
        f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})"
    )


def _credentials(settings: WarehouseSettings) -> Any:
    """Anonymous (an emulator), a service-account file, or None: the client finds application default
    credentials itself."""
    if settings.bigquery_anonymous:
        return AnonymousCredentials()
    if settings.bigquery_credentials_file:
        from google.oauth2 import service_account

        try:
            return service_account.Credentials.from_service_account_file(
                settings.bigquery_credentials_file,
                scopes=["https://www.googleapis.com/auth/bigquery"],
            )
        except (OSError, ValueError) as error:
            raise RuntimeError(
                f"TRIAGE_WAREHOUSE__BIGQUERY_CREDENTIALS_FILE {settings.bigquery_credentials_file!r}: "
                f"not a readable service-account key ({error})"
            ) from error
    import google.auth

    try:
        credentials, _project = google.auth.default(scopes=["https://www.googleapis.com/auth/bigquery"])
    except auth_errors.DefaultCredentialsError as error:
        raise RuntimeError(
            "BigQuery: no credentials (set TRIAGE_WAREHOUSE__BIGQUERY_CREDENTIALS_FILE to a service-account "
            "key, or GOOGLE_APPLICATION_CREDENTIALS, or run on Google Cloud)"
        ) from error
    return credentials


def _field(column: Column) -> bigquery.SchemaField:
    return bigquery.SchemaField(
        column.name, TYPES[column.type], mode="NULLABLE", description=column.description or None
    )


def _value(value: Any) -> Any:
    """A row value as the JSON a load job reads: timestamps in UTC, JSON columns as JSON values."""
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return value


def _reason(error: api.GoogleAPICallError) -> str:
    return next((e.get("reason", "") for e in error.errors or () if isinstance(e, dict)), "")


def _message(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error)
    return message.splitlines()[0] if message else type(error).__name__
