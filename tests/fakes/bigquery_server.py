"""A local server speaking the BigQuery REST API v2 calls that the official client makes for a load-then-
MERGE sync, keeping each table's resource (schema, partitioning, clustering) and rows.

Endpoints (paths as in the API reference, under `/bigquery/v2`):
- `GET projects/{p}/datasets/{d}` (datasets.get);
- `GET|PATCH|DELETE projects/{p}/datasets/{d}/tables/{t}`, `POST projects/{p}/datasets/{d}/tables`
  (tables.get/patch/delete/insert). As BigQuery, a patch may add NULLABLE columns at the end but not drop
  or retype one (`400 invalid`), and insert refuses a partitioning field that is not a TIMESTAMP/DATE or
  more than four clustering fields;
- `POST /upload/bigquery/v2/projects/{p}/jobs?uploadType=multipart|resumable` (jobs.insert with a load:
  the multipart/related body is the job's JSON then the data; a resumable session is opened by the POST
  and filled by `PUT` with Content-Range), NEWLINE_DELIMITED_JSON rows checked against the schema (an
  unknown field or a bad value fails the job with reason `invalid`, as BigQuery);
- `POST projects/{p}/jobs` (jobs.insert with a query): runs the MERGE statement that
  triage.warehouse.targets.bigquery emits (`MERGE T USING S ON keys WHEN MATCHED THEN UPDATE SET ...
  WHEN NOT MATCHED THEN INSERT ...`); any other SQL fails with `invalidQuery`;
- `GET projects/{p}/jobs/{id}` (jobs.get) and `GET projects/{p}/queries/{id}` (jobs.getQueryResults):
  a job answers RUNNING to its first poll, then DONE, so the client polls as it does against BigQuery.

Credentials: anonymous calls are served unless `service_account()` was called; from then on every call
needs `Authorization: Bearer` with a token from `POST /token`, Google's OAuth 2.0 token endpoint for
service accounts (a JWT-bearer grant whose RS256 assertion is checked against the key handed out),
else 401 as Google answers.

Errors have BigQuery's shape: `{"error": {"code", "message", "errors": [{"reason", "message"}],
"status"}}`. `fail_next(503|429, count)` scripts failures of the next calls; `requests` logs
(method, path) of every call.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.local_server import Answer, LocalJSONServer

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
}
STATUS_REASON = {429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}
CLUSTERABLE = {"STRING", "INTEGER", "INT64", "BOOLEAN", "BOOL", "TIMESTAMP", "DATE", "DATETIME", "NUMERIC"}
MERGE = re.compile(
    r"MERGE `(?P<target>[^`]+)` AS T\s+USING `(?P<source>[^`]+)` AS S\s+ON (?P<on>.+?)\s+"
    r"WHEN MATCHED THEN UPDATE SET (?P<set>.+?)\s+"
    r"WHEN NOT MATCHED THEN INSERT \((?P<columns>[^)]*)\) VALUES \((?P<values>[^)]*)\)\s*;?\s*$",
    re.S,
)


class BigQueryError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class FakeBigQuery(LocalJSONServer):
    def __init__(self, project: str = "acme-cx", datasets: tuple[str, ...] = ("support",)) -> None:
        super().__init__()
        self.project = project
        self.datasets = set(datasets)
        self.forbidden_datasets: set[str] = set()
        self.tables: dict[tuple[str, str], dict[str, Any]] = {}  # (dataset, table) -> resource
        self.rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []
        self._uploads: dict[str, dict[str, Any]] = {}
        self.running_polls = 1  # polls a job answers RUNNING before DONE
        self._public_keys: dict[str, rsa.RSAPublicKey] = {}  # client_email -> its key
        self.tokens: dict[str, str] = {}  # access token -> client_email

    # -- what tests read ---------------------------------------------------------------------------

    def table(self, name: str, dataset: str = "support") -> dict[str, Any]:
        return self.tables[(dataset, name)]

    def table_rows(self, name: str, dataset: str = "support") -> list[dict[str, Any]]:
        return self.rows[(dataset, name)]

    def service_account(self, email: str = "triage@acme-cx.iam.gserviceaccount.com") -> dict[str, Any]:
        """A service-account key file's content whose tokens this server issues; calls need one after."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_keys[email] = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": uuid.uuid4().hex,
            "private_key": pem.decode(),
            "client_email": email,
            "client_id": "1" * 21,
            "token_uri": f"{self.address}/token",
        }

    def calls(self, method: str, pattern: str) -> int:
        return sum(1 for m, p in self.requests if m == method and re.search(pattern, p))

    # -- the wire ----------------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((method, parts.path))
            self.authorizations.append(headers.get("Authorization") or headers.get("authorization"))
            failure = self._scripted_failure()
            if failure:
                status, extra = failure
                reason = STATUS_REASON.get(status, "backendError")
                return status, extra, error_body(status, reason, f"scripted {status}")
            try:
                if (method, parts.path) == ("POST", "/token"):
                    return self._token(raw)
                self._authenticate(headers)
                return self._route(method, parts.path, query, headers, raw)
            except BigQueryError as error:
                return error.code, {}, error_body(error.code, error.reason, error.message)

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> Answer:
        if path.startswith("/upload/bigquery/v2/projects/"):
            return self._upload(method, path, query, headers, raw)
        if method == "PUT" and path.startswith("/upload-session/"):
            return self._resume(path.rsplit("/", 1)[1], headers, raw)
        match = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/(.*)", path)
        if not match:
            raise BigQueryError(404, "notFound", f"no such endpoint: {method} {path}")
        self._project(match.group(1))
        rest = match.group(2).split("/")
        if rest[0] == "datasets" and len(rest) == 2 and method == "GET":
            return 200, {}, self._dataset(rest[1])
        if rest[0] == "datasets" and len(rest) == 3 and rest[2] == "tables" and method == "POST":
            self._dataset(rest[1])
            return 200, {}, self._insert_table(rest[1], json.loads(raw))
        if rest[0] == "datasets" and len(rest) == 4 and rest[2] == "tables":
            self._dataset(rest[1])
            key = (rest[1], rest[3])
            if key not in self.tables:
                raise BigQueryError(404, "notFound", f"Not found: Table {self.project}:{rest[1]}.{rest[3]}")
            if method == "GET":
                return 200, {}, self._table_resource(key)
            if method == "PATCH":
                return 200, {}, self._patch_table(key, json.loads(raw))
            if method == "DELETE":
                del self.tables[key], self.rows[key]
                return 200, {}, {}  # BigQuery answers 204; the shared server always sends a JSON body
        if rest[0] == "jobs" and len(rest) == 1 and method == "POST":
            return 200, {}, self._start_job(json.loads(raw), b"")
        if rest[0] == "jobs" and len(rest) == 2 and method == "GET":
            return 200, {}, self._poll(rest[1])
        if rest[0] == "queries" and len(rest) == 2 and method == "GET":
            job = self._poll(rest[1])
            done = job["status"]["state"] == "DONE"
            if done and "errorResult" in job["status"]:
                error = job["status"]["errorResult"]
                raise BigQueryError(400, error["reason"], error["message"])
            answer = {"kind": "bigquery#getQueryResultsResponse", "jobReference": job["jobReference"]}
            answer["jobComplete"] = done
            if done:
                answer |= {"totalRows": "0", "schema": {"fields": []}, "rows": []}
                answer["numDmlAffectedRows"] = job["statistics"]["query"]["numDmlAffectedRows"]
            return 200, {}, answer
        raise BigQueryError(404, "notFound", f"no such endpoint: {method} {path}")

    def _token(self, raw: bytes) -> Answer:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {}, {"error": "unsupported_grant_type"}
        try:
            head, claims_part, signature = form["assertion"].split(".")
            claims = json.loads(_unb64(claims_part))
            self._public_keys[claims["iss"]].verify(
                _unb64(signature), f"{head}.{claims_part}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (KeyError, ValueError, InvalidSignature):
            return 400, {}, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        if claims.get("aud") != "https://oauth2.googleapis.com/token":  # what Google checks, whoever serves
            return 400, {}, {"error": "invalid_grant", "error_description": "Invalid JWT: bad audience"}
        token = f"ya29.{uuid.uuid4().hex}"
        self.tokens[token] = claims["iss"]
        return 200, {}, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _authenticate(self, headers: dict[str, str]) -> None:
        if not self._public_keys:
            return
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if given.removeprefix("Bearer ") not in self.tokens:
            raise BigQueryError(401, "unauthorized", "Request is missing required authentication credential.")

    def _project(self, project: str) -> None:
        if project != self.project:
            raise BigQueryError(404, "notFound", f"Not found: Project {project}")

    def _dataset(self, dataset: str) -> dict[str, Any]:
        if dataset in self.forbidden_datasets:
            raise BigQueryError(
                403, "accessDenied", f"Access Denied: Dataset {self.project}:{dataset}: Permission denied"
            )
        if dataset not in self.datasets:
            raise BigQueryError(404, "notFound", f"Not found: Dataset {self.project}:{dataset}")
        reference = {"projectId": self.project, "datasetId": dataset}
        return {"kind": "bigquery#dataset", "id": f"{self.project}:{dataset}", "datasetReference": reference}

    # -- tables ------------------------------------------------------------------------------------

    def _insert_table(self, dataset: str, resource: dict[str, Any]) -> dict[str, Any]:
        name = resource["tableReference"]["tableId"]
        if (dataset, name) in self.tables:
            raise BigQueryError(409, "duplicate", f"Already Exists: Table {self.project}:{dataset}.{name}")
        fields = {f["name"]: f["type"] for f in resource.get("schema", {}).get("fields", [])}
        day = (resource.get("timePartitioning") or {}).get("field")
        if day and fields.get(day) not in {"TIMESTAMP", "DATE", "DATETIME"}:
            raise BigQueryError(400, "invalid", f"bad partitioning field {day}")
        clustering = (resource.get("clustering") or {}).get("fields") or []
        if len(clustering) > 4 or any(fields.get(name) not in CLUSTERABLE for name in clustering):
            raise BigQueryError(400, "invalid", f"bad clustering fields {clustering}")
        stored = dict(resource, creationTime=str(_now_ms()), etag=uuid.uuid4().hex, type="TABLE")
        stored["id"] = f"{self.project}:{dataset}.{name}"
        self.tables[(dataset, name)] = stored
        self.rows[(dataset, name)] = []
        return self._table_resource((dataset, name))

    def _patch_table(self, key: tuple[str, str], patch: dict[str, Any]) -> dict[str, Any]:
        table = self.tables[key]
        if "schema" in patch:
            old, new = table["schema"]["fields"], patch["schema"]["fields"]
            kept = [(f["name"], f["type"]) for f in new[: len(old)]]
            if kept != [(f["name"], f["type"]) for f in old]:
                raise BigQueryError(
                    400, "invalid", "Provided Schema does not match Table: a field dropped or changed"
                )
            if any(f.get("mode") == "REQUIRED" for f in new[len(old) :]):
                raise BigQueryError(400, "invalid", "a column added to a table must be NULLABLE")
            table["schema"] = patch["schema"]
            for row in self.rows[key]:  # the rows stay; a new column reads null in them
                for field in new[len(old) :]:
                    row.setdefault(field["name"], None)
        for name in ("timePartitioning", "clustering"):
            if name in patch and patch[name] != table.get(name):
                raise BigQueryError(400, "invalid", f"{name} cannot be changed by a patch")
        table["etag"] = uuid.uuid4().hex
        return self._table_resource(key)

    def _table_resource(self, key: tuple[str, str]) -> dict[str, Any]:
        resource = dict(self.tables[key])
        resource["numRows"] = str(len(self.rows[key]))
        return resource

    # -- jobs --------------------------------------------------------------------------------------

    def _upload(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> Answer:
        self._project(path.split("/")[5])
        kind = query.get("uploadType")
        if method == "POST" and kind == "multipart":
            metadata, data = _multipart(headers, raw)
            return 200, {}, self._start_job(metadata, data)
        if method == "POST" and kind == "resumable":
            session = uuid.uuid4().hex
            self._uploads[session] = {"metadata": json.loads(raw), "data": b""}
            return 200, {"Location": f"{self.address}/upload-session/{session}"}, None
        raise BigQueryError(400, "invalid", f"unsupported upload: {method} uploadType={kind}")

    def _resume(self, session: str, headers: dict[str, str], raw: bytes) -> Answer:
        upload = self._uploads[session]
        upload["data"] += raw
        content_range = {k.lower(): v for k, v in headers.items()}.get("content-range", "")
        total = content_range.rsplit("/", 1)[-1]
        if total != "*" and int(total) == len(upload["data"]):
            del self._uploads[session]
            return 200, {}, self._start_job(upload["metadata"], upload["data"])
        return 308, {"Range": f"bytes=0-{len(upload['data']) - 1}"}, None

    def _start_job(self, resource: dict[str, Any], data: bytes) -> dict[str, Any]:
        reference = dict(resource.get("jobReference") or {})
        reference.setdefault("jobId", uuid.uuid4().hex)
        reference["projectId"] = self.project
        reference.setdefault("location", "US")
        if reference["jobId"] in self.jobs:
            raise BigQueryError(409, "duplicate", f"Already Exists: Job {self.project}:{reference['jobId']}")
        configuration = resource.get("configuration", {})
        job = {
            "kind": "bigquery#job",
            "id": f"{self.project}:{reference['location']}.{reference['jobId']}",
            "jobReference": reference,
            "configuration": configuration,
            "status": {"state": "RUNNING"},
            "statistics": {"creationTime": str(_now_ms()), "startTime": str(_now_ms())},
        }
        try:
            if "load" in configuration:
                job["statistics"]["load"] = {"outputRows": str(self._load(configuration["load"], data))}
            elif "query" in configuration:
                affected = self._query(configuration["query"])
                job["statistics"]["query"] = {"numDmlAffectedRows": str(affected), "statementType": "MERGE"}
            else:
                raise BigQueryError(400, "invalid", "this stand-in runs load and query jobs only")
        except BigQueryError as error:
            job["status"]["errorResult"] = {"reason": error.reason, "message": error.message}
            job["status"]["errors"] = [job["status"]["errorResult"]]
        self.jobs[reference["jobId"]] = job
        if not self.running_polls:
            _finish(job)
        return _public(job)

    def _poll(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.jobs:
            raise BigQueryError(404, "notFound", f"Not found: Job {self.project}:{job_id}")
        job = self.jobs[job_id]
        if job.setdefault("_polls", 0) < self.running_polls:
            job["_polls"] += 1
            return _public(job, status={"state": "RUNNING"})
        _finish(job)
        return _public(job)

    def _load(self, load: dict[str, Any], data: bytes) -> int:
        destination = load["destinationTable"]
        self._project(destination["projectId"])
        self._dataset(destination["datasetId"])
        key = (destination["datasetId"], destination["tableId"])
        if load.get("sourceFormat") != "NEWLINE_DELIMITED_JSON":
            raise BigQueryError(400, "invalid", "this stand-in loads NEWLINE_DELIMITED_JSON only")
        if key not in self.tables:
            raise BigQueryError(404, "notFound", f"Not found: Table {self.project}:{key[0]}.{key[1]}")
        fields = {f["name"]: f["type"] for f in self.tables[key]["schema"]["fields"]}
        rows = []
        for number, line in enumerate(data.decode().splitlines(), start=1):
            if line.strip():
                rows.append(_typed_row(json.loads(line), fields, number, load.get("ignoreUnknownValues")))
        if load.get("writeDisposition") == "WRITE_TRUNCATE":
            self.rows[key] = rows
        else:
            self.rows[key].extend(rows)
        return len(rows)

    def _query(self, query: dict[str, Any]) -> int:
        if query.get("useLegacySql", True):
            raise BigQueryError(400, "invalidQuery", "MERGE needs standard SQL (useLegacySql: false)")
        match = MERGE.match(query["query"].strip())
        if not match:
            raise BigQueryError(
                400, "invalidQuery", f"this stand-in runs only the sync's MERGE: {query['query'][:80]}"
            )
        target, source = self._ref(match["target"]), self._ref(match["source"])
        on = re.findall(r"T\.`(\w+)` = S\.`(\w+)`", match["on"])
        sets = re.findall(r"`(\w+)` = S\.`(\w+)`", match["set"])
        columns = re.findall(r"`(\w+)`", match["columns"])
        values = re.findall(r"S\.`(\w+)`", match["values"])
        fields = {f["name"] for f in self.tables[target]["schema"]["fields"]}
        for name in [*(a for a, _ in on), *(a for a, _ in sets), *columns]:
            if name not in fields:
                raise BigQueryError(400, "invalidQuery", f"Unrecognized name: {name}")
        index = {tuple(row[t] for t, _ in on): row for row in self.rows[target]}
        matched: set[tuple[Any, ...]] = set()
        affected = 0
        for staged in self.rows[source]:
            key = tuple(staged[s] for _, s in on)
            if key in matched:
                raise BigQueryError(
                    400, "invalidQuery", "UPDATE/MERGE must match at most one source row for each target row"
                )
            matched.add(key)
            if key in index:
                index[key].update({t: staged[s] for t, s in sets})
            else:
                row = dict.fromkeys(fields)
                row.update(zip(columns, (staged[name] for name in values), strict=True))
                self.rows[target].append(row)
                index[key] = row
            affected += 1
        return affected

    def _ref(self, dotted: str) -> tuple[str, str]:
        project, dataset, table = dotted.split(".")
        self._project(project)
        self._dataset(dataset)
        if (dataset, table) not in self.tables:
            raise BigQueryError(404, "notFound", f"Not found: Table {project}:{dataset}.{table}")
        return dataset, table


def error_body(code: int, reason: str, message: str) -> dict[str, Any]:
    status = STATUS.get(code, "UNAVAILABLE" if code >= 500 else "RESOURCE_EXHAUSTED")
    errors = [{"message": message, "domain": "global", "reason": reason}]
    return {"error": {"code": code, "message": message, "errors": errors, "status": status}}


def _multipart(headers: dict[str, str], raw: bytes) -> tuple[dict[str, Any], bytes]:
    content_type = {k.lower(): v for k, v in headers.items()}["content-type"]
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    parts = list(message.iter_parts())
    if len(parts) != 2:
        raise BigQueryError(400, "invalid", "a multipart upload is the job's JSON, then the data")
    return json.loads(parts[0].get_payload(decode=True)), parts[1].get_payload(decode=True)


def _typed_row(
    row: dict[str, Any], fields: dict[str, str], number: int, ignore_unknown: bool
) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(fields)
    for name, value in row.items():
        if name not in fields:
            if ignore_unknown:
                continue
            raise BigQueryError(
                400, "invalid", f"Error while reading data, line {number}: no such field: {name}."
            )
        try:
            out[name] = None if value is None else _typed(fields[name], value)
        except (TypeError, ValueError) as error:
            raise BigQueryError(
                400, "invalid", f"Error while reading data, line {number}, field {name}: {error}"
            ) from None
    return out


def _typed(kind: str, value: Any) -> Any:
    if kind == "STRING":
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if kind in {"INTEGER", "INT64"}:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError(f"expected an integer, got {value!r}")
        return int(value)
    if kind in {"FLOAT", "FLOAT64"}:
        if isinstance(value, bool):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if kind in {"BOOLEAN", "BOOL"}:
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise TypeError(f"expected a boolean, got {value!r}")
        return value
    if kind == "TIMESTAMP":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        text = str(value).removesuffix(" UTC")
        if not re.fullmatch(
            r"\d{4}[-/]\d{2}[-/]\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?", text
        ):
            raise ValueError(f"Could not parse {value!r} as a timestamp")
        moment = datetime.fromisoformat(text.replace("/", "-"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if kind == "JSON":
        return value
    raise ValueError(f"type {kind} is not kept by this stand-in")


def _finish(job: dict[str, Any]) -> None:
    if job["status"]["state"] == "RUNNING":
        job["status"]["state"] = "DONE"
        job["statistics"]["endTime"] = str(_now_ms())


def _public(job: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")} | changes


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
