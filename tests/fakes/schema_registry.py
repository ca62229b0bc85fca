"""A local server speaking the Confluent Schema Registry REST API (v1), the subset clients use:

- `GET /schemas/ids/{id}`: `{"schema", "schemaType", "references"}` (`schemaType` left out for AVRO);
  an unknown id is 404 with `error_code` 40403.
- `GET /subjects`, `GET /subjects/{subject}/versions`, `GET /subjects/{subject}/versions/{version|latest}`
  (40401 subject not found, 40402 version not found).
- `POST /subjects/{subject}/versions` `{"schema", "schemaType"?, "references"?}` → `{"id"}`: the same
  schema again gets its id; one incompatible with the latest version is 409; a schema that does not
  parse is 422 (42201).
- `POST /compatibility/subjects/{subject}/versions/{version|latest}` → `{"is_compatible"}`, BACKWARD
  (the registry's default) for Avro records: the new schema can read what the latest one wrote
  (every added field has a default, no field changes type).

Auth, when set: HTTP Basic (`username`, `password`) or a bearer token; 401 otherwise. `down = True`
makes every call a 503, as a registry outage looks to its clients; `fail_next` scripts failures.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.fakes.local_server import Answer, LocalJSONServer

CONTENT_TYPE = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
INCOMPATIBLE = "Schema being registered is incompatible with an earlier schema"
BY_ID = re.compile(r"^/schemas/ids/(\d+)$")
VERSIONS = re.compile(r"^/subjects/([^/]+)/versions$")
VERSION = re.compile(r"^/subjects/([^/]+)/versions/(latest|\d+)$")
COMPATIBILITY = re.compile(r"^/compatibility/subjects/([^/]+)/versions/(latest|\d+)$")


def _error(status: int, code: int, message: str) -> Answer:
    return status, CONTENT_TYPE, {"error_code": code, "message": message}


class FakeSchemaRegistry(LocalJSONServer):
    def __init__(self, username: str = "", password: str = "", token: str = "") -> None:
        super().__init__()
        self.username, self.password, self.token = username, password, token
        self.schemas: dict[int, dict[str, Any]] = {}  # id -> {schema, schemaType, references}
        self.subjects: dict[str, list[int]] = {}  # subject -> schema ids, version 1 first
        self.requests: list[tuple[str, str]] = []
        self.down = False

    @property
    def env(self) -> dict[str, str]:
        return {"TRIAGE_SCHEMA_REGISTRY__URL": self.address}

    def register(self, subject: str, schema: str | dict, schema_type: str = "AVRO") -> int:
        """Register directly (as a producer's serializer would); returns the id."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        status, _, body = self._register(subject, {"schema": text, "schemaType": schema_type})
        assert status == 200, body
        return body["id"]

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        with self._lock:
            self.requests.append((method, path))
            if self.down:
                return _error(503, 50003, "the registry is unavailable")
            failure = self._scripted_failure()
        if failure is not None:
            return failure[0], failure[1], {"error_code": failure[0], "message": "scripted failure"}
        if not self._authorised(headers):
            return _error(401, 401, "Unauthorized")
        path = path.split("?", 1)[0]
        with self._lock:
            if method == "GET" and (found := BY_ID.match(path)):
                schema = self.schemas.get(int(found[1]))
                if schema is None:
                    return _error(404, 40403, f"Schema {found[1]} not found")
                return 200, CONTENT_TYPE, _shown(schema)
            if method == "GET" and path == "/subjects":
                return 200, CONTENT_TYPE, sorted(self.subjects)
            if method == "GET" and (found := VERSIONS.match(path)):
                if found[1] not in self.subjects:
                    return _error(404, 40401, f"Subject '{found[1]}' not found.")
                return 200, CONTENT_TYPE, list(range(1, len(self.subjects[found[1]]) + 1))
            if method == "GET" and (found := VERSION.match(path)):
                return self._version(found[1], found[2])
            if method == "POST" and (found := VERSIONS.match(path)):
                return self._register(found[1], json.loads(raw or b"{}"))
            if method == "POST" and (found := COMPATIBILITY.match(path)):
                return self._compatibility(found[1], found[2], json.loads(raw or b"{}"))
        return _error(404, 404, f"HTTP 404 Not Found: {method} {path}")

    def _authorised(self, headers: dict[str, str]) -> bool:
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if self.token:
            return given == f"Bearer {self.token}"
        if self.username:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return given == f"Basic {expected}"
        return True

    def _version(self, subject: str, version: str) -> Answer:
        ids = self.subjects.get(subject)
        if not ids:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        number = len(ids) if version == "latest" else int(version)
        if not 1 <= number <= len(ids):
            return _error(404, 40402, f"Version {version} not found.")
        schema_id = ids[number - 1]
        return 200, CONTENT_TYPE, {
            "subject": subject, "version": number, "id": schema_id, **_shown(self.schemas[schema_id])
        }  # fmt: skip

    def _register(self, subject: str, body: dict[str, Any]) -> Answer:
        schema_type = body.get("schemaType", "AVRO")
        text = body.get("schema")
        if not isinstance(text, str) or (schema_type in ("AVRO", "JSON") and not _parses(text)):
            return _error(422, 42201, "Invalid schema")
        for schema_id, known in self.schemas.items():
            if known["schema"] == text and known["schemaType"] == schema_type:
                if schema_id not in self.subjects.setdefault(subject, []):
                    if not self._compatible(subject, schema_type, text):
                        return _error(
                            409, 409, "Schema being registered is incompatible with an earlier schema"
                        )
                    self.subjects[subject].append(schema_id)
                return 200, CONTENT_TYPE, {"id": schema_id}
        if not self._compatible(subject, schema_type, text):
            return _error(409, 409, INCOMPATIBLE)
        schema_id = max(self.schemas, default=0) + 1
        self.schemas[schema_id] = {
            "schema": text, "schemaType": schema_type, "references": body.get("references") or []
        }  # fmt: skip
        self.subjects.setdefault(subject, []).append(schema_id)
        return 200, CONTENT_TYPE, {"id": schema_id}

    def _compatibility(self, subject: str, version: str, body: dict[str, Any]) -> Answer:
        if not self.subjects.get(subject):
            return _error(404, 40401, f"Subject '{subject}' not found.")
        compatible = self._compatible(subject, body.get("schemaType", "AVRO"), body.get("schema", ""))
        return 200, CONTENT_TYPE, {"is_compatible": compatible}

    def _compatible(self, subject: str, schema_type: str, text: str) -> bool:
        ids = self.subjects.get(subject)
        if not ids or schema_type != "AVRO":
            return True
        latest = self.schemas[ids[-1]]
        if latest["schemaType"] != "AVRO":
            return False
        old, new = json.loads(latest["schema"]), json.loads(text)
        old_fields = {field["name"]: field for field in old.get("fields", [])}
        for field in new.get("fields", []):
            before = old_fields.get(field["name"])
            if before is None and "default" not in field:
                return False  # the new reader cannot fill it in for old data
            if before is not None and before["type"] != field["type"]:
                return False
        return True


def _shown(schema: dict[str, Any]) -> dict[str, Any]:
    shown = {"schema": schema["schema"], "references": schema["references"]}
    if schema["schemaType"] != "AVRO":
        shown["schemaType"] = schema["schemaType"]
    return shown


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
