"""Microsoft Teams: an Adaptive Card through a Teams Workflows incoming webhook.

`POST <webhook url>` with `{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard>}]}`; the workflow answers 202.
The URL is a secret (whoever has it can post), so it comes from the environment variable the routing
file names.

- The card: the headline, the summary, the message quoted, the facts (a FactSet), why the channel got
  it, the small print, and the ticket or source as a button (http(s) links only).
- No one can be mentioned by customer text: a Teams mention needs an `<at>` tag *and* an entry in
  `msteams.entities`; the card never has entities, and `<at>` in any text is neutralised as well.
  TextBlocks render markdown, so `[text](url)` is broken up too: links come only from the ticket or
  source URL (an `Action.OpenUrl` button).
- Every card carries its delivery id in the small print. A Workflows webhook has no way to read what
  was posted, so a delivery in doubt after a crash (posted, not yet marked) is posted again: the
  duplicate shows the same delivery id. 429 and 5xx go back to the outbox (after Retry-After).
- Each case is one card (a webhook cannot edit a posted card, so incidents are not gathered here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from triage.receivers import posting
from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.layout import Alert, case_alert
from triage.store.tables import DeliveryRow

CARD = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MENTION_TAG = re.compile(r"<(\s*/?\s*at\b[^>]*)>", re.IGNORECASE)
MARKDOWN_LINK = re.compile(r"\]\s*\(")


def neutral(text: Any) -> str:
    """Customer text as Teams shows it, unable to mention or to make a link: `<at>x</at>` becomes
    `‹at›x‹/at›`, and a markdown link `[x](url)` loses the `](` that makes it one."""
    text = MENTION_TAG.sub(lambda match: f"‹{match.group(1)}›", str(text or ""))
    return MARKDOWN_LINK.sub("] (", text)


def card(alert: Alert, delivery_id: int) -> dict[str, Any]:
    """The Adaptive Card (1.4, what Teams renders) of one alert."""
    body: list[dict[str, Any]] = [
        _text(alert.headline, weight="Bolder", size="Medium", color=_color(alert.urgency)),
    ]
    if alert.correction:
        body.append(_text(alert.correction, isSubtle=True))
    if alert.summary:
        body.append(_text(alert.summary, weight="Bolder"))
    if alert.subject:
        body.append(_text(alert.subject))
    if alert.excerpt:
        body.append(_text(alert.excerpt))
    facts = [{"title": name, "value": neutral(value)} for name, value in alert.facts.items()]
    body.append({"type": "FactSet", "facts": facts})
    if alert.why:
        body.append(_text(f"Why you got this: {alert.why}"))
    small = [*alert.small_print, f"triage delivery {delivery_id}"]
    body.append(_text(" · ".join(small), isSubtle=True, size="Small"))
    content: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},  # never "entities": no mentions
    }
    if alert.links:
        content["actions"] = [
            {"type": "Action.OpenUrl", "title": neutral(link.label), "url": link.url} for link in alert.links
        ]
    return content


def message(alert: Alert, delivery_id: int) -> dict[str, Any]:
    """What the Workflows webhook takes: a message with the card as its one attachment."""
    return {
        "type": "message",
        "attachments": [{"contentType": CARD, "contentUrl": None, "content": card(alert, delivery_id)}],
    }


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": neutral(text), "wrap": True, **style}


def _color(urgency: str) -> str:
    return {"urgent": "Attention", "high": "Warning"}.get(urgency, "Default")


class MSTeamsSender:
    batch_size = 1  # one claim per post: a crash can leave at most one card in doubt

    def __init__(self, client: httpx.Client, receiver: str, webhook_url: str) -> None:
        self.client = client
        self.receiver = receiver
        self.webhook_url = webhook_url

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        return [self._send(delivery) for delivery in deliveries]

    def _send(self, delivery: DeliveryRow) -> Outcome | DeliveryFailed:
        what = f"Teams {self.receiver}"
        raw = posting.json_bytes(message(case_alert(delivery.payload), delivery.id))
        answer = posting.post(self.client, self.webhook_url, what, raw)
        return posting.outcome(answer, what, "card posted")
