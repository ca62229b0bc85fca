"""Who may post a message: a Zendesk webhook signed with its signing secret, or a helpdesk that sends
the bearer token.

Zendesk signs `base64(HMAC-SHA256(secret, timestamp + body))`, the timestamp being the
`X-Zendesk-Webhook-Signature-Timestamp` header as sent (ISO 8601, `2021-03-25T05:09:27Z`). A timestamp
further than `max_age_s` from now is refused, so a captured request cannot be replayed later.
Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

SIGNATURE = "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE"  # WSGI names of the headers
TIMESTAMP = "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE_TIMESTAMP"
AUTHORIZATION = "HTTP_AUTHORIZATION"


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Authenticator:
    def __init__(self, token: str, zendesk_secret: str, max_age_s: float) -> None:
        self.token = token
        self.zendesk_secret = zendesk_secret
        self.max_age_s = max_age_s

    def refusal(self, headers: Mapping[str, str], body: bytes, now: datetime | None = None) -> str | None:
        """None when the request is authentic, else why not (for the log; the answer says less)."""
        if headers.get(SIGNATURE) and self.zendesk_secret:
            problem = self._zendesk(headers, body, now or datetime.now(UTC))
            if problem is None:
                return None
        elif headers.get(SIGNATURE):
            problem = "a Zendesk signature, and no TRIAGE_INGEST__ZENDESK_SIGNING_SECRET to check it"
        else:
            problem = "no Zendesk signature"
        scheme, _, token = headers.get(AUTHORIZATION, "").partition(" ")
        if scheme.lower() == "bearer" and token:
            if self.token and hmac.compare_digest(token.strip().encode(), self.token.encode()):
                return None
            return "wrong bearer token"
        return f"{problem}, no bearer token"

    def _zendesk(self, headers: Mapping[str, str], body: bytes, now: datetime) -> str | None:
        stamp = headers.get(TIMESTAMP, "")
        try:
            signed_at = datetime.fromisoformat(stamp)
        except ValueError:
            return f"signature timestamp {stamp[:40]!r} is not ISO 8601"
        if signed_at.tzinfo is None:
            signed_at = signed_at.replace(tzinfo=UTC)
        age = abs((now - signed_at).total_seconds())
        if age > self.max_age_s:
            return f"signature timestamp {stamp} is {age:.0f}s from now (at most {self.max_age_s:.0f}s)"
        expected = zendesk_signature(self.zendesk_secret, stamp, body)
        if not hmac.compare_digest(headers[SIGNATURE].strip().encode(), expected.encode()):
            return "Zendesk signature does not match"
        return None
