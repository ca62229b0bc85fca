"""A client of a Confluent-compatible schema registry's REST API (Confluent, Redpanda, Apicurio's
compatibility API, Karapace): schemas by id (fetched once, cached), registration and compatibility.

An unreachable registry (or a 5xx) is an outage, `RegistryUnavailable`: the worker retries the record
and dead-letters nothing. A schema id the registry does not know (HTTP 404), still unknown after a
few tries, is `UnknownSchema`: its record is dead-lettered `schema_unknown`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from triage.settings import SchemaRegistrySettings

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryUnavailable(Exception):
    """The registry did not answer, or answered 5xx: try the record again later."""


class UnknownSchema(Exception):
    """The registry does not know this schema id (or subject)."""


class RegistryError(Exception):
    """The registry refused a request (bad credentials, an incompatible schema): a configuration problem."""


@dataclass(frozen=True)
class Schema:
    id: int
    type: str  # AVRO, PROTOBUF or JSON
    text: str
    references: list[dict[str, Any]] = field(default_factory=list)


def require_formats() -> None:
    """The decoders are an optional install: say so at start, not on the first registry-encoded record."""
    import importlib.util

    needed = ("fastavro", "jsonschema", "grpc_tools")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise RegistryError(
            f"TRIAGE_SCHEMA_REGISTRY__URL is set but {', '.join(missing)} is not installed: "
            "pip install 'triage[schema-registry]'"
        )


class RegistryClient:
    def __init__(
        self, settings: SchemaRegistrySettings, unknown_tries: int = 3, unknown_wait_s: float = 0.5
    ) -> None:
        require_formats()
        auth: httpx.Auth | tuple[str, str] | None = None
        headers = {"Accept": CONTENT_TYPE}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        elif settings.username:
            auth = (settings.username, settings.password)
        verify: Any = (settings.ca_file and str(settings.ca_file)) or settings.verify_tls
        cert = (str(settings.cert_file), str(settings.key_file)) if settings.cert_file else None
        self.url = settings.url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            auth=auth,
            headers=headers,
            verify=verify,
            cert=cert,
            timeout=settings.timeout_s,
        )
        self._cache: dict[int, Schema] = {}
        self._lock = threading.Lock()
        self.unknown_tries = unknown_tries
        self.unknown_wait_s = unknown_wait_s

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise RegistryUnavailable(f"schema registry {self.url}: {error}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise RegistryUnavailable(f"schema registry {self.url}{path}: HTTP {response.status_code}")
        if response.status_code in (401, 403):
            raise RegistryError(
                f"schema registry {self.url} refused the credentials (HTTP {response.status_code}); "
                "check TRIAGE_SCHEMA_REGISTRY__USERNAME/__PASSWORD or __TOKEN"
            )
        return response

    def schema(self, schema_id: int) -> Schema:
        """The schema with this id, from the cache or the registry (`GET /schemas/ids/{id}`)."""
        with self._lock:
            cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        for attempt in range(self.unknown_tries):
            response = self._request("GET", f"/schemas/ids/{schema_id}")
            if response.status_code == 404:
                if attempt + 1 < self.unknown_tries:
                    time.sleep(self.unknown_wait_s * (attempt + 1))
                continue
            if response.status_code >= 400:
                raise RegistryError(f"schema registry: GET /schemas/ids/{schema_id}: {_message(response)}")
            body = response.json()
            schema = Schema(
                id=schema_id,
                type=body.get("schemaType", "AVRO"),
                text=body["schema"],
                references=body.get("references") or [],
            )
            with self._lock:
                self._cache[schema_id] = schema
            return schema
        raise UnknownSchema(f"schema id {schema_id} is not in the registry at {self.url}")

    def subject_version(self, subject: str, version: int | str) -> Schema:
        response = self._request("GET", f"/subjects/{subject}/versions/{version}")
        if response.status_code == 404:
            raise UnknownSchema(f"subject {subject} version {version} is not in the registry")
        if response.status_code >= 400:
            raise RegistryError(f"schema registry: subject {subject}: {_message(response)}")
        body = response.json()
        return Schema(
            body["id"], body.get("schemaType", "AVRO"), body["schema"], body.get("references") or []
        )

    def is_compatible(self, subject: str, schema_type: str, text: str) -> bool:
        """Whether `text` may become the subject's next version (True when the subject is new)."""
        response = self._request(
            "POST",
            f"/compatibility/subjects/{subject}/versions/latest",
            json=_schema_body(schema_type, text),
            headers={"Content-Type": CONTENT_TYPE},
        )
        if response.status_code == 404:  # no such subject yet: anything is compatible
            return True
        if response.status_code >= 400:
            raise RegistryError(f"schema registry: compatibility of {subject}: {_message(response)}")
        return bool(response.json().get("is_compatible"))

    def register(self, subject: str, schema_type: str, text: str) -> int:
        """Register the schema under the subject (the same schema again gets its existing id)."""
        if not self.is_compatible(subject, schema_type, text):
            raise RegistryError(
                f"the results schema is not compatible with the latest version of {subject} "
                "(see docs/input.md#results-in-avro-or-protobuf)"
            )
        response = self._request(
            "POST",
            f"/subjects/{subject}/versions",
            json=_schema_body(schema_type, text),
            headers={"Content-Type": CONTENT_TYPE},
        )
        if response.status_code >= 400:
            raise RegistryError(f"schema registry: registering {subject}: {_message(response)}")
        return int(response.json()["id"])


def _schema_body(schema_type: str, text: str) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": text}
    if schema_type != "AVRO":  # the registry's default, left out as Confluent's clients do
        body["schemaType"] = schema_type
    return body


def _message(response: httpx.Response) -> str:
    try:
        return f"HTTP {response.status_code}: {response.json().get('message')}"
    except ValueError:
        return f"HTTP {response.status_code}"
