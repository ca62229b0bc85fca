"""Slack alerts through slack_sdk's WebClient: Block Kit, one thread per conversation, escalations.

- `blocks()` lays out what an on-call reads, one small function per block (headline, summary,
  message, facts, why you got this, small print); a new kind of block is one more function there.
  What each block says (the headline, which facts, why, the confidence word) is channel-neutral and
  lives in triage/receivers/layout.py, shared with Teams, e-mail, webhooks and PagerDuty; this module
  keeps only Block Kit, Slack's escaping and the transport.

- The first alert of a conversation opens a thread; follow-ups go into it; an urgency above the
  highest already alerted is posted as a new top-level alert linking the thread. With a route's
  `repeat_interval`, a follow-up after that interval is also broadcast to the channel.
- Customer text (and anything derived from it) has & < > escaped, so `<!channel>`, `<!here>` or
  `<@U123>` in a message can never notify anyone; links are only built from http(s) URLs.
- 429: slack_sdk's RateLimitErrorRetryHandler waits Retry-After; when it gives up, the delivery goes
  back to the queue until Retry-After has passed. Nothing is dropped.
- Every post carries the delivery id in message metadata, so after a crash a delivery that may have
  gone out is looked up in the channel before it is sent again: no duplicate alert.
- With feedback on, a per-case alert ends with buttons (Right; menus to set urgency, sentiment and
  category) and, once someone used them, who corrected what. Where each alert landed (channel id, ts)
  is kept as a receipt, so a click is matched to its case by the store, not by what the click says.
  Incident alerts carry no buttons: they speak for many cases.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from triage.feedback.fields import BLOCK_PREFIX, FIELDS, RIGHT, SETTERS, values
from triage.message import URGENCY_ORDER
from triage.oncall.slack_blocks import TakeView, escalated_blocks, take_blocks
from triage.oncall.views import TakeViews
from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.incident_view import IncidentView, build
from triage.receivers.layout import (
    KIND_PREFIX,
    confidence_word,
    customer,
    headline,
    history_facts,
    language_line,
    link,
    shows_summary,
    small_print,
    why,
)
from triage.store import Store
from triage.store.feedback import FeedbackStore
from triage.store.incidents import Incidents, Member
from triage.store.tables import DeliveryRow, IncidentRow, LabelRow, ReceiptRow, SlackThreadRow

log = logging.getLogger(__name__)

EVENT_TYPE = "triage_alert"
INCIDENT_EVENT = "triage_incident_update"
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
# Block Kit's limits: blocks per message, characters per header, section text and field; options per
# menu and characters per option text.
MAX_BLOCKS, HEADER_CHARS, TEXT_CHARS, FIELD_CHARS = 50, 150, 3000, 2000
MAX_OPTIONS, OPTION_CHARS = 100, 75
LABELS_SHOWN = 10  # the latest corrections an alert lists


@dataclass(frozen=True)
class FeedbackView:
    """An alert's feedback part: the delivery its buttons name, the categories its menu offers, and
    the labels people gave so far (oldest first)."""

    delivery_id: int
    categories: Sequence[str]
    labels: Sequence[LabelRow] = ()


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


def blocks(
    case: dict[str, Any],
    kind: str,
    thread_link: str | None = None,
    feedback: FeedbackView | None = None,
    take: TakeView | None = None,
) -> list[dict[str, Any]]:
    """Block Kit for one alert (`kind`: new, follow_up or escalation), what an on-call reads first
    at the top: the headline, who corrected the case into this channel (if someone did), the summary
    (when it says more than the message), the message, the facts, why this channel got it, the model
    in small print, then the feedback buttons and who used them. One function per block; each returns
    None when it has nothing to show."""
    built = [
        headline_block(case, kind),
        *escalated_blocks(case),  # an escalation: not taken for 15 min
        correction_block(case),
        summary_block(case),
        message_block(case),
        facts_block(case),
        why_block(case),
        footer_block(case, thread_link),
        actions_block(case, feedback),
        labels_block(feedback),
        *take_blocks(take),  # I'm on it, or who took it
    ]
    return [block for block in built if block is not None][:MAX_BLOCKS]


def headline_block(case: dict[str, Any], kind: str) -> dict[str, Any]:
    """`🚨 Escalated: URGENT · outage · Dana Whitfield (enterprise)`"""
    text = f"{URGENCY_ICON[case['urgency']]} {headline(case, kind)}"
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(escape(text), HEADER_CHARS)}}


def summary_block(case: dict[str, Any]) -> dict[str, Any] | None:
    if not shows_summary(case):
        return None
    return _section(f"*{escape(case['summary'])}*")


def message_block(case: dict[str, Any]) -> dict[str, Any] | None:
    """The subject and the excerpt (redacted, at most 500 characters), quoted."""
    lines = []
    if case.get("subject"):
        lines.append(f"*{escape(case['subject'])}*")
    if case.get("excerpt"):
        lines.append(f">{escape(case['excerpt'])}")
    return _section("\n".join(lines)) if lines else None


def facts_block(case: dict[str, Any]) -> dict[str, Any]:
    sentiment = case["sentiment"]
    facts = {
        "Sentiment": f"{SENTIMENT_ICON[sentiment]} {sentiment}",
        "Confidence": confidence_word(case["confidence"]),
        "Language": escape(language_line(case)),
        "Channel": escape(case.get("channel")),
        **{name: escape(value) for name, value in history_facts(case).items()},
        **link_fact(case),
    }
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": _clip(f"*{name}*\n{value}", FIELD_CHARS)}
            for name, value in facts.items()
            if value
        ],
    }


def why_block(case: dict[str, Any]) -> dict[str, Any] | None:
    """The route's matchers that held: `urgency >= high` and `customer.tier in (enterprise, pro)`."""
    said = why(case, code=lambda matcher: f"`{escape(matcher).replace('`', '')}`", text=escape)
    return _section(f"*Why you got this:* {said}") if said is not None else None


def footer_block(case: dict[str, Any], thread_link: str | None) -> dict[str, Any]:
    """Small print: the number behind the confidence word, the model, the thread of earlier alerts."""
    parts = [escape(part) for part in small_print(case)]
    if thread_link and (link := safe_link(thread_link, "earlier alerts in this conversation")):
        parts.append(link)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(" · ".join(parts), TEXT_CHARS)}]}


def correction_block(case: dict[str, Any]) -> dict[str, Any] | None:
    """A case re-routed by a correction: `✏️ Ana set the urgency to urgent (the model said normal)`."""
    correction = case.get("correction")
    if not isinstance(correction, dict):
        return None
    text = (
        f":pencil2: {escape(correction.get('by'))} set the {escape(correction.get('field'))} to "
        f"*{escape(correction.get('value'))}* (the model said {escape(correction.get('model'))})"
    )
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, TEXT_CHARS)}]}


def actions_block(case: dict[str, Any], feedback: FeedbackView | None) -> dict[str, Any] | None:
    """Right, and a menu per field showing its current value (the latest label, else the model's)."""
    if feedback is None:
        return None
    current = {field: str(case.get(field) or "") for field in FIELDS}
    current.update({label.field: label.team_value for label in feedback.labels})
    right = {
        "type": "button",
        "action_id": RIGHT,
        "text": {"type": "plain_text", "text": "Right"},
        "value": "right",
        "style": "primary",
    }
    menus = [
        _menu(action_id, field, values(field, feedback.categories), current[field])
        for action_id, field in SETTERS.items()
    ]
    block_id = f"{BLOCK_PREFIX}{feedback.delivery_id}"
    return {"type": "actions", "block_id": block_id, "elements": [right, *menus]}


def _menu(action_id: str, field: str, choices: Sequence[str], current: str) -> dict[str, Any]:
    options = [_option(value) for value in choices[:MAX_OPTIONS]]
    menu = {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": {"type": "plain_text", "text": f"Set {field}"},
        "options": options,
    }
    if current in choices[:MAX_OPTIONS]:
        menu["initial_option"] = _option(current)
    return menu


def _option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value[:OPTION_CHARS]}, "value": value}


def labels_block(feedback: FeedbackView | None) -> dict[str, Any] | None:
    """Who corrected what, latest last: `✏️ Ana set urgency to high (model: normal) · Ben: right`."""
    if feedback is None or not feedback.labels:
        return None
    by_event: dict[tuple[str, str], list[LabelRow]] = {}
    for label in feedback.labels:  # one click of Right is three labels: one entry
        by_event.setdefault((label.person_id, label.event_key.rsplit(":", 1)[0]), []).append(label)
    entries = []
    for labels in list(by_event.values())[-LABELS_SHOWN:]:
        who = escape(labels[0].person_name or labels[0].person_id)
        if labels[0].source != "slack":
            who += f" in {escape(labels[0].source)}"
        changed = [label for label in labels if label.team_value != label.model_value]
        if not changed:
            entries.append(f"{who}: right")
            continue
        said = ", ".join(
            f"{label.field} {escape(label.team_value)} (model: {escape(label.model_value)})"
            for label in changed
        )
        entries.append(f"{who} set {said}")
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _clip(":pencil2: " + " · ".join(entries), TEXT_CHARS)}],
    }


def link_fact(case: dict[str, Any]) -> dict[str, str]:
    """The ticket, else the message's source (metadata.url), else nothing."""
    found = link(case)
    shown = safe_link(found.url, found.label) if found else None
    return {found.name: shown} if found and shown else {}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, TEXT_CHARS)}}


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters, without leaving half an entity (`&am`) at the cut."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: limit - 1]) + "…"


def incident_text(view: IncidentView, escalation: dict[str, Any] | None = None) -> str:
    """The notification text of an incident alert (or of its escalation by a more urgent case)."""
    prefix = "Escalated incident" if escalation else "Incident"
    urgency = (escalation or {}).get("urgency") or view.urgency
    return (
        f"{prefix}: {urgency.upper()} {escape(view.category)}: {view.count} cases "
        f"from {len(view.customers)} customers"
    )


def incident_blocks(
    view: IncidentView,
    escalation: dict[str, Any] | None = None,
    thread_link: str | None = None,
    take: TakeView | None = None,
) -> list[dict[str, Any]]:
    """Block Kit for an incident: how many cases and customers (with their tiers), since when, the
    highest urgency, up to three representative messages (redacted and escaped, as every excerpt), and
    why the channel got it. An escalation leads with the more urgent case."""
    urgency = (escalation or {}).get("urgency") or view.urgency
    prefix = "Escalated incident" if escalation else "Incident"
    headline = f"{URGENCY_ICON[urgency]} {prefix}: {urgency.upper()} · {view.category} · {view.count} cases"
    tiers = ", ".join(f"{count} {tier}" for tier, count in view.tiers.items())
    facts = (
        f"*{view.count} cases from {len(view.customers)} customers* ({escape(tiers)})\n"
        f"first case {view.first_at:%H:%M:%S} UTC, latest {view.last_at:%H:%M:%S} UTC · "
        f"grouped by {escape(view.key or 'route')}"
    )
    built: list[dict[str, Any] | None] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(escape(headline), HEADER_CHARS)}},
        _section(facts),
        _case_block(escalation, "More urgent case") if escalation else None,
        *(_case_block(case) for case in view.excerpts),
        why_block(view.excerpts[0]) if view.excerpts else None,
    ]
    note = "New cases are listed in this alert's thread."
    if thread_link and (link := safe_link(thread_link, "the incident's alert")):
        note = f"Follow the incident at {link}"
    built.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    built.extend(take_blocks(take))  # I'm on it, mute similar
    return [block for block in built if block is not None][:MAX_BLOCKS]


def incident_thread_blocks(members: Sequence[Member], shown: int = 20) -> list[dict[str, Any]]:
    """One thread reply naming the cases that joined since the last update."""
    lines = [
        f"• {escape(customer(m.payload))}: {escape(m.payload.get('summary') or '')[:150]}"
        for m in members[:shown]
    ]
    if len(members) > shown:
        lines.append(f"… and {len(members) - shown} more")
    heading = f"*{len(members)} new case{'s' if len(members) != 1 else ''}*"
    return [_section("\n".join([heading, *lines]))]


def _case_block(case: dict[str, Any], label: str | None = None) -> dict[str, Any]:
    """One case of an incident: who, how urgent, the message quoted."""
    heading = f"*{label}* · " if label else ""
    who = f"{heading}{escape(customer(case))} · {case['urgency']}"
    return _section(f"{who}\n>{_clip(escape(case.get('excerpt') or ''), 500)}")


def redraw_alert(
    client: WebClient,
    receipt: ReceiptRow,
    case: dict[str, Any],
    labels: Sequence[LabelRow],
    categories: Sequence[str],
    take: TakeView | None = None,
) -> None:
    """Redraw a posted per-case alert with who corrected what and who took it (chat.update, in place)."""
    kind = receipt.kind if receipt.kind in KIND_PREFIX else "new"
    client.chat_update(
        channel=receipt.place,
        ts=receipt.ref,
        text=fallback_text(case, kind),
        blocks=blocks(case, kind, receipt.link, FeedbackView(receipt.delivery_id, categories, labels), take),
    )


def fallback_text(case: dict[str, Any], kind: str) -> str:
    """The notification text (shown in pushes and by clients without Block Kit), escaped too."""
    headline = f"{KIND_PREFIX[kind]}{case['urgency'].upper()} {case['category']} · {customer(case)}"
    return _clip(escape(f"{headline}: {case['summary']}"), TEXT_CHARS)


class SlackSender:
    batch_size = 1  # one claim per post: a crash can leave at most one alert in doubt
    groups = True  # grouped cases become one incident alert

    def __init__(
        self,
        client: WebClient,
        channel: str,
        store: Store,
        categories: Sequence[str] | None = None,
        takes: bool = False,
    ) -> None:
        """`categories`: the category menu's choices for the feedback buttons (None: no buttons);
        `takes`: the on-call buttons (I'm on it; on incidents, mute similar)."""
        self.client = client
        self.channel = channel
        self.store = store
        self.categories = categories
        self.incidents = Incidents(store)
        self.receipts = FeedbackStore(store)
        self.takes = TakeViews(store) if takes else None
        self._channel_id: str | None = channel if CHANNEL_ID.match(channel) else None

    @property
    def lane(self) -> str:
        """Receivers posting to one channel share its lane, as they share its rate limit."""
        return f"slack:{self.channel}"

    def send_batch(self, deliveries: Sequence[DeliveryRow]) -> list[Outcome | DeliveryFailed]:
        return [self._send(delivery) for delivery in deliveries]

    def _send(self, delivery: DeliveryRow) -> Outcome | DeliveryFailed:
        try:
            if delivery.incident_id is not None:
                return self._send_for_incident(delivery)
            if delivery.attempts > 1:
                found = self._already_posted(delivery)
                if found:
                    self._remember_thread(delivery, found["ts"])
                    posted = found.get("metadata", {}).get("event_payload", {})
                    self._receipt(delivery, found["ts"], posted.get("kind"), posted.get("link"))
                    return Outcome("sent", f"found in the channel after a retry: ts {found['ts']}")
            return self._post_alert(delivery)
        except (SlackApiError, SlackClientError, OSError) as error:
            return self._failed(error)

    def _failed(self, error: Exception) -> DeliveryFailed:
        if isinstance(error, SlackApiError):
            status = error.response.status_code
            retry_after = error.response.headers.get("Retry-After") or error.response.headers.get(
                "retry-after"
            )
            reason = error.response.get("error") or f"HTTP {status}"
            return DeliveryFailed(f"Slack {self.channel}: {reason}", retry_after_s=_float(retry_after))
        return DeliveryFailed(f"Slack {self.channel}: {type(error).__name__}: {error}")

    # --- incidents ------------------------------------------------------------------------------

    def _send_for_incident(self, delivery: DeliveryRow) -> Outcome:
        """An incident's alert (its first case's delivery, due after group_wait) or an escalation."""
        incident = self.incidents.get(delivery.incident_id or 0)
        assert incident is not None, f"delivery {delivery.id}: incident {delivery.incident_id} is gone"
        opening = incident.opener_id == delivery.id
        if delivery.attempts > 1 and (found := self._already_posted(delivery)):
            if opening:
                counted = int(found.get("metadata", {}).get("event_payload", {}).get("counted") or 1)
                self.incidents.alert_posted(
                    incident.id, self._channel_id or self.channel, found["ts"], counted
                )
            return Outcome("sent", f"found in the channel after a retry: ts {found['ts']}")
        if not opening:
            view = build(incident, self.incidents.members(incident.id))
            link = self._permalink(incident.slack_ts) if incident.slack_ts else None
            ts = self._post_blocks(
                delivery,
                incident_text(view, delivery.payload),
                incident_blocks(view, delivery.payload, link),
                incident_id=incident.id,
            )
            return Outcome("sent", f"escalation {ts} of incident {incident.id}")
        incident = self.incidents.begin_alert(incident.id)
        view = build(incident, self.incidents.members(incident.id))
        take = self.takes.for_incident(incident) if self.takes else None
        if view.count == 1:  # a group of one case looks like any alert
            text, blocks_ = fallback_text(delivery.payload, "new"), blocks(delivery.payload, "new", take=take)
        else:
            text, blocks_ = incident_text(view), incident_blocks(view, take=take)
        ts = self._post_blocks(delivery, text, blocks_, incident_id=incident.id, counted=view.count)
        self.incidents.alert_posted(incident.id, self._channel_id or self.channel, ts, view.count)
        return Outcome("sent", f"incident {incident.id} alert {ts}: {view.count} cases")

    def update_incident(self, incident: IncidentRow) -> int | DeliveryFailed:
        """Bring a posted incident alert up to date (chat.update, in place) and list the cases that
        joined since in one thread reply. Returns how many cases the alert now counts."""
        view = build(incident, self.incidents.members(incident.id))
        channel, ts = incident.slack_channel or self.channel, incident.slack_ts
        try:
            take = self.takes.for_incident(incident) if self.takes else None
            self.client.chat_update(
                channel=channel, ts=ts, text=incident_text(view), blocks=incident_blocks(view, take=take)
            )
            listed = incident.alerted_count
            if incident.update_attempts > 1:  # an earlier try may have listed some before it stopped
                listed = max(listed, self._listed_through(incident))
            new = view.since(listed)
            if new:
                self.client.chat_postMessage(
                    channel=channel,
                    thread_ts=ts,
                    text=f"{len(new)} new case{'s' if len(new) != 1 else ''} in this incident",
                    blocks=incident_thread_blocks(new),
                    unfurl_links=False,
                    unfurl_media=False,
                    link_names=False,
                    metadata={
                        "event_type": INCIDENT_EVENT,
                        "event_payload": {"incident_id": incident.id, "through": new[-1].seq},
                    },
                )
        except (SlackApiError, SlackClientError, OSError) as error:
            return self._failed(error)
        return view.count

    def _listed_through(self, incident: IncidentRow) -> int:
        """The last case the incident's thread replies have listed (0: none)."""
        replies = self.client.conversations_replies(
            channel=incident.slack_channel or self.channel, ts=incident.slack_ts, include_all_metadata=True
        )
        through = 0
        for page in replies:
            for message in page.get("messages", []):
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == INCIDENT_EVENT and payload.get("incident_id") == incident.id:
                    through = max(through, int(payload.get("through") or 0))
        return through

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
        feedback = FeedbackView(delivery.id, self.categories) if self.categories is not None else None
        take = self.takes.for_delivery(delivery) if self.takes else None
        text, blocks_ = fallback_text(case, kind), blocks(case, kind, thread_link, feedback, take)
        ts = self._post_blocks(
            delivery, text, blocks_, thread_ts=thread_ts, broadcast=broadcast, kind=kind, link=thread_link
        )
        self._receipt(delivery, ts, kind, thread_link)
        return ts

    def _receipt(self, delivery: DeliveryRow, ts: str, kind: str | None, link: str | None) -> None:
        """Where a per-case alert landed: what a click on its buttons is checked against."""
        self.receipts.record_receipt(
            ReceiptRow(
                delivery_id=delivery.id,
                message_id=delivery.message_id,
                system="slack",
                place=self._channel_id or self.channel,
                ref=ts,
                kind=kind,
                link=link,
            )
        )

    def _post_blocks(
        self,
        delivery: DeliveryRow,
        text: str,
        blocks_: list[dict[str, Any]],
        thread_ts: str | None = None,
        broadcast: bool = False,
        **extra: Any,
    ) -> str:
        """Post an alert carrying its delivery id (and `extra`) in the message metadata."""
        case = delivery.payload
        response = self.client.chat_postMessage(
            channel=self.channel,
            text=text,
            blocks=blocks_,
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
                    **{key: value for key, value in extra.items() if value is not None},
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

    def _already_posted(self, delivery: DeliveryRow) -> dict[str, Any] | None:
        """A message carrying this delivery's id, posted since the delivery was stored."""
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
    def _find(first_page: Any, delivery_id: int) -> dict[str, Any] | None:
        """Search every page (slack_sdk follows the cursor when a response is iterated)."""
        for page in first_page:
            for message in page.get("messages", []):
                metadata = message.get("metadata") or {}
                if (
                    metadata.get("event_type") == EVENT_TYPE
                    and metadata.get("event_payload", {}).get("delivery_id") == delivery_id
                ):
                    return dict(message)
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
