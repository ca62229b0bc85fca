"""One JSON POST to a hosted service, its answer turned into what the outbox understands.

Used by the PagerDuty, Teams and webhook receivers. Nothing is retried here: a 429, a 5xx or a
dropped connection is a DeliveryFailed (with the service's Retry-After when it gave one), and the
outbox tries again after that wait or its back-off (2, 4, 8 ... s). Each of those receivers makes a
resend harmless in its own way (PagerDuty's dedup_key, the webhook's idempotency key).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from triage.receivers.base import DeliveryFailed, Outcome

REFUSED = (400, 413, 422)  # the payload itself is refused: a resend would be too


def make_client(timeout_s: float = 15.0) -> httpx.Client:
    return httpx.Client(timeout=timeout_s, headers={"User-Agent": "triage"})


def post(
    client: httpx.Client, url: str, what: str, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response | DeliveryFailed:
    """POST `body` (JSON bytes, sent as given: a signature covers these bytes); a transient failure
    comes back as DeliveryFailed, any other answer as the response."""
    try:
        response = client.post(
            url, content=body, headers={"Content-Type": "application/json", **(headers or {})}
        )
    except httpx.HTTPError as error:
        return DeliveryFailed(f"{what}: {type(error).__name__}: {error}")
    if response.status_code == 429 or response.status_code >= 500:
        return DeliveryFailed(f"{what}: HTTP {response.status_code}", retry_after_s=retry_after(response))
    return response


def outcome(response: httpx.Response | DeliveryFailed, what: str, sent: str) -> Outcome | DeliveryFailed:
    """2xx: sent; an answer a resend would get again (a bad payload, a gone URL): skipped, with the
    service's reason; anything else: tried again."""
    if isinstance(response, DeliveryFailed):
        return response
    if response.status_code < 300:
        return Outcome("sent", sent)
    if response.status_code in REFUSED:
        return Outcome("skipped", f"{what} refused it: HTTP {response.status_code} {response.text[:200]}")
    return DeliveryFailed(f"{what}: HTTP {response.status_code}", retry_after_s=retry_after(response))


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the form these services use); None when absent or a date."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
