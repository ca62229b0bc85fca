"""A system receiving triage's signed webhooks: checks the signature, drops repeats, keeps the state.

A request is accepted only with `X-Triage-Timestamp` within five minutes of now and `X-Triage-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">` made with the shared secret (compared in constant
time); anything else is 401 and changes nothing. A body whose `idempotencyKey` was seen before is
answered 200 and counted in `repeats`, not applied again. `groups` keeps each groupKey's latest status
(firing or resolved), as a system would keep its incidents.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from tests.fakes.local_server import Answer, LocalJSONServer

TOLERANCE_S = 300


class FakeWebhookReceiver(LocalJSONServer):
    def __init__(self, secret: str = "whsec-test-0123") -> None:
        super().__init__()
        self.secret = secret
        self.received: list[dict[str, Any]] = []  # accepted bodies, each once
        self.headers: list[dict[str, str]] = []
        self.repeats = 0
        self.rejected = 0
        self.groups: dict[str, str] = {}  # groupKey -> firing | resolved

    @property
    def url(self) -> str:
        return f"{self.address}/hooks/triage"

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        if (method, path) != ("POST", "/hooks/triage"):
            return 404, {}, {"error": "not found"}
        with self._lock:
            failure = self._scripted_failure()
            if failure:
                return failure[0], failure[1], {"error": "try later"}
            lower = {name.lower(): value for name, value in headers.items()}
            if not self.signed(lower.get("x-triage-timestamp", ""), lower.get("x-triage-signature", ""), raw):
                self.rejected += 1
                return 401, {}, {"error": "bad signature"}
            body = json.loads(raw)
            if lower.get("idempotency-key") != body["idempotencyKey"]:
                return 400, {}, {"error": "Idempotency-Key differs from the body's idempotencyKey"}
            if any(seen["idempotencyKey"] == body["idempotencyKey"] for seen in self.received):
                self.repeats += 1
                return 200, {}, {"status": "repeat"}
            self.received.append(body)
            self.headers.append(lower)
            self.groups[body["groupKey"]] = body["status"]
            return 200, {}, {"status": "ok"}

    def signed(self, timestamp: str, signature: str, raw: bytes) -> bool:
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_S:
            return False
        expected = hmac.new(self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"sha256={expected}", signature)
