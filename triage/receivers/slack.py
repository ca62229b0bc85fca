"""Slack alerts through slack_sdk's WebClient: Block Kit, one thread per conversation, escalations.

- The first alert of a conversation opens a thread; follow-ups go into it; an urgency above the
  highest already alerted is posted as a new top-level alert linking the thread. With a route's
  `repeat_interval`, a follow-up after that interval is also broadcast to the channel.
- Customer text (and anything derived from it) has & < > escaped, so `<!channel>`, `<!here>` or
  `<@U123>` in a message can never notify anyone; links are only built from http(s) URLs.
- 429: slack_sdk's RateLimitErrorRetryHandler waits Retry-After; when it gives up, the delivery goes
  back to the queue until Retry-After has passed. Nothing is dropped.
- Every post carries the delivery id in message metadata, so after a crash a delivery that may have
  gone out is looked up in the channel before it is sent again: no duplicate alert.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from triage.message import URGENCY_ORDER
from triage.receivers.base import DeliveryFailed, Outcome
from triage.store import Store
from triage.store.tables import DeliveryRow, SlackThreadRow

log = logging.getLogger(__name__)

EVENT_TYPE = "triage_alert"
URGENCY_ICON = {
    "urgent": ":rotating_light:",
    "high": ":warning:",
    "normal": ":large_blue_circle:",
    "low": ":white_circle:",
}
SENTIMENT_ICON = {
    "negative": ":disappointed:",
    "neutral": ":neutral_face:",
    "positive": ":slightly_smiling_face:",
}
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class SlackConfigError(Exception):
    """Slack cannot be used as configured (bad token, bad URL); raised at start."""


def escape(text: Any) -> str:
    """Slack's own rule for text it should not parse: & < > become entities."""
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_link(url: Any, label: str) -> str | None:
    url = str(url or "")
    if not re.match(r"^https?://[^\s|<>]+$", url):
        return None
    return f"<{escape(url)}|{escape(label)}>"


def make_client(token: str, base_url: str, timeout_s: float = 10.0) -> WebClient:
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=int(timeout_s),
        # Only 429s are retried in place: a 429 was surely not posted. A dropped connection or a 5xx
        # may have been, so those go back to the outbox, whose next try looks for the post first.
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )


def check_token(client: WebClient) -> None:
    """auth.test, so a bad token or URL stops the worker at start with one line."""
    try:
        client.auth_test()
    except SlackApiError as error:
        raise SlackConfigError(
            f"Slack rejected TRIAGE_SLACK__TOKEN: auth.test: {error.response.get('error')}"
        ) from None
    except (SlackClientError, OSError) as error:
        raise SlackConfigError(f"cannot reach Slack at {client.base_url}: {error}") from None


def blocks(case: dict[str, Any], kind: str, thread_link: str | None = None) -> list[dict[str, Any]]:
    """Block Kit for one alert. `kind`: new, follow_up or escalation."""
    urgency, sentiment = case["urgency"], case["sentiment"]
    title = {"new": "New case", "follow_up": "Follow-up", "escalation": "Escalated"}[kind]
    customer = escape(case.get("customer_name") or case.get("customer_id") or "unknown customer")
    tier = escape(case.get("customer_tier") or "no tier")
    model = f"{escape(case['model'])} · {case['confidence']:.0%}" + (
        " · degraded" if case.get("degraded") else ""
    )
    result = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{title}: {urgency.upper()} · {case['category']}"[:150]},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{URGENCY_ICON[urgency]} *{escape(case['summary'])}*"},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Urgency*\n{urgency}"},
                {"type": "mrkdwn", "text": f"*Sentiment*\n{SENTIMENT_ICON[sentiment]} {sentiment}"},
                {"type": "mrkdwn", "text": f"*Customer*\n{customer} ({tier})"},
                {"type": "mrkdwn", "text": f"*Channel*\n{escape(case.get('channel') or 'unknown')}"},
                {"type": "mrkdwn", "text": f"*Category*\n{escape(case['category'])}"},
                {"type": "mrkdwn", "text": f"*Model*\n{model}"},
            ],
        },
    ]
    quoted = escape(case.get("excerpt") or "")
    if case.get("subject"):
        quoted = f"*{escape(case['subject'])}*\n{quoted}"
    if quoted:
        result.append({"type": "context", "elements": [{"type": "mrkdwn", "text": quoted[:2900]}]})
    links = [
        link
        for link in (
            safe_link(case.get("ticket_url"), f"Ticket {case.get('ticket_id') or ''}".strip()),
            safe_link(thread_link, "earlier alerts in this conversation") if thread_link else None,
        )
        if link
    ]
    if links:
        result.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(links)}]})
    return result


def fallback_text(case: dict[str, Any], kind: str) -> str:
    """The notification text (shown in pushes and by clients without Block Kit), escaped too."""
    prefix = {"new": "", "follow_up": "Follow-up: ", "escalation": "Escalated: "}[kind]
    return f"{prefix}{case['urgency'].upper()} {escape(case['category'])}: {escape(case['summary'])}"


class SlackSender:
    batch_size = 1  # one claim per post: a crash can leave at most one alert in doubt

    def __init__(self, client: WebClient, channel: str, store: Store) -> None:
        self.client = client
        self.channel = channel
        self.store = store
        self._channel_id: str | None = channel if CHANNEL_ID.match(channel) else None

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        return [self._send(delivery) for delivery in deliveries]

    def _send(self, delivery: DeliveryRow) -> Outcome | DeliveryFailed:
        try:
            if delivery.attempts > 1:
                found = self._already_posted(delivery)
                if found:
                    self._remember_thread(delivery, found)
                    return Outcome("sent", f"found in the channel after a retry: ts {found}")
            return self._post_alert(delivery)
        except SlackApiError as error:
            status = error.response.status_code
            retry_after = error.response.headers.get("Retry-After") or error.response.headers.get(
                "retry-after"
            )
            reason = error.response.get("error") or f"HTTP {status}"
            return DeliveryFailed(f"Slack {self.channel}: {reason}", retry_after_s=_float(retry_after))
        except (SlackClientError, OSError) as error:
            return DeliveryFailed(f"Slack {self.channel}: {type(error).__name__}: {error}")

    def _post_alert(self, delivery: DeliveryRow) -> Outcome:
        case = delivery.payload
        conversation = str(case["conversation_id"])
        thread = self.store.slack_thread(conversation, self.channel)
        now = datetime.now(UTC)
        if thread is None:
            ts = self._post(delivery, "new")
            self.store.save_slack_thread(
                SlackThreadRow(
                    conversation_id=conversation,
                    channel=self.channel,
                    thread_ts=ts,
                    top_urgency=case["urgency"],
                    last_notified_at=now,
                )
            )
            return Outcome("sent", f"new thread {ts}")
        if URGENCY_ORDER.index(case["urgency"]) > URGENCY_ORDER.index(thread.top_urgency):
            ts = self._post(delivery, "escalation", thread_link=self._permalink(thread.thread_ts))
            thread.top_urgency, thread.last_notified_at = case["urgency"], now
            self.store.save_slack_thread(thread)
            return Outcome("sent", f"escalation {ts}, thread {thread.thread_ts}")
        repeat = case.get("repeat_interval_s")
        last = thread.last_notified_at.replace(tzinfo=thread.last_notified_at.tzinfo or UTC)
        broadcast = repeat is not None and now - last >= timedelta(seconds=repeat)
        ts = self._post(delivery, "follow_up", thread_ts=thread.thread_ts, broadcast=broadcast)
        if broadcast:
            thread.last_notified_at = now
            self.store.save_slack_thread(thread)
        return Outcome(
            "sent", f"reply {ts} in thread {thread.thread_ts}" + (", broadcast" if broadcast else "")
        )

    def _post(
        self,
        delivery: DeliveryRow,
        kind: str,
        thread_ts: str | None = None,
        broadcast: bool = False,
        thread_link: str | None = None,
    ) -> str:
        case = delivery.payload
        response = self.client.chat_postMessage(
            channel=self.channel,
            text=fallback_text(case, kind),
            blocks=blocks(case, kind, thread_link),
            thread_ts=thread_ts,
            reply_broadcast=broadcast if thread_ts else None,
            unfurl_links=False,
            unfurl_media=False,
            link_names=False,
            metadata={
                "event_type": EVENT_TYPE,
                "event_payload": {
                    "delivery_id": delivery.id,
                    "message_id": case["message_id"],
                    "conversation_id": str(case["conversation_id"]),
                },
            },
        )
        self._channel_id = self._channel_id or response.get("channel")
        return str(response["ts"])

    def _remember_thread(self, delivery: DeliveryRow, ts: str) -> None:
        """A post found after a crash may have opened the thread (or escalated it) without the store
        knowing: record it, so the conversation's next alert is threaded as if nothing happened."""
        case = delivery.payload
        conversation = str(case["conversation_id"])
        thread = self.store.slack_thread(conversation, self.channel)
        now = datetime.now(UTC)
        if thread is None:
            thread = SlackThreadRow(
                conversation_id=conversation,
                channel=self.channel,
                thread_ts=ts,
                top_urgency=case["urgency"],
                last_notified_at=now,
            )
        elif URGENCY_ORDER.index(case["urgency"]) > URGENCY_ORDER.index(thread.top_urgency):
            thread.top_urgency, thread.last_notified_at = case["urgency"], now
        else:
            return
        self.store.save_slack_thread(thread)

    def _permalink(self, ts: str) -> str | None:
        try:
            return self.client.chat_getPermalink(channel=self._channel_id or self.channel, message_ts=ts)[
                "permalink"
            ]
        except SlackApiError:
            return None  # the escalation still goes out, without the link

    def _already_posted(self, delivery: DeliveryRow) -> str | None:
        """The ts of a message carrying this delivery's id, posted since the delivery was stored."""
        channel = self._channel_id or self.channel
        oldest = (
            f"{(delivery.created_at.replace(tzinfo=delivery.created_at.tzinfo or UTC)).timestamp() - 60:.6f}"
        )
        found = self._find(
            self.client.conversations_history(
                channel=channel, oldest=oldest, include_all_metadata=True, limit=200
            ),
            delivery.id,
        )
        thread = self.store.slack_thread(str(delivery.payload["conversation_id"]), self.channel)
        if found or thread is None:
            return found
        return self._find(
            self.client.conversations_replies(
                channel=channel, ts=thread.thread_ts, oldest=oldest, include_all_metadata=True, limit=200
            ),
            delivery.id,
        )

    @staticmethod
    def _find(first_page: Any, delivery_id: int) -> str | None:
        """Search every page (slack_sdk follows the cursor when a response is iterated)."""
        for page in first_page:
            for message in page.get("messages", []):
                metadata = message.get("metadata") or {}
                if (
                    metadata.get("event_type") == EVENT_TYPE
                    and metadata.get("event_payload", {}).get("delivery_id") == delivery_id
                ):
                    return str(message["ts"])
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
