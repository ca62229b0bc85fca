"""Clicks on an alert's on-call buttons ("I'm on it", "Mute similar for 2 h"), from Socket Mode.

As with the feedback buttons (triage/feedback/slack_clicks.py), a click is believed only as far as the
store agrees: the block names a delivery, whose alert must be the clicked message in that channel (the
receipt of a per-case alert, the posted alert of an incident). A take is stored once (triage/oncall/
acks.py) and the alert redrawn to show who took it; a mute stores one silence per click (its id is
made from the click), with the matchers the alert shows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from triage.feedback.slack_clicks import ACTION_TS, Refused
from triage.oncall import silences
from triage.oncall.acks import take, target_of
from triage.oncall.slack_blocks import BLOCK_PREFIX, MUTE, TAKE
from triage.oncall.views import TakeViews
from triage.ops import metrics
from triage.receivers import slack
from triage.receivers.incident_view import build
from triage.store import Store, StoreUnavailable
from triage.store.feedback import FeedbackStore
from triage.store.incidents import Incidents
from triage.store.tables import DeliveryRow, IncidentRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OncallClick:
    action: str  # TAKE or MUTE
    delivery_id: int
    channel: str
    ts: str
    user: str  # the name shown (the user id when Slack gives no name)
    action_ts: str


def owns(payload: Any) -> bool:
    """Whether a Socket Mode payload is a click on an on-call button (else: the feedback buttons')."""
    actions = payload.get("actions") if isinstance(payload, dict) else None
    return (
        isinstance(actions, list)
        and bool(actions)
        and isinstance(actions[0], dict)
        and actions[0].get("action_id") in (TAKE, MUTE)
    )


def read_click(payload: dict[str, Any]) -> OncallClick:
    user, channel, container = (payload.get(key) or {} for key in ("user", "channel", "container"))
    action = payload["actions"][0]
    block_id, action_ts = str(action.get("block_id") or ""), action.get("action_ts")
    ref = block_id.removeprefix(BLOCK_PREFIX)
    if not block_id.startswith(BLOCK_PREFIX) or not ref.isdigit() or len(ref) > 18:
        raise Refused("malformed", f"block_id {block_id[:80]!r} is not a triage alert's")
    if not isinstance(action_ts, str) or not ACTION_TS.match(action_ts):
        raise Refused("malformed", f"action_ts {str(action_ts)[:40]!r} is not a Slack timestamp")
    user_id, channel_id, ts = user.get("id"), channel.get("id"), container.get("message_ts")
    if not all(isinstance(value, str) and value for value in (user_id, channel_id, ts)):
        raise Refused("malformed", "user.id, channel.id or container.message_ts missing")
    name = user.get("username") or user.get("name") or user_id
    return OncallClick(action["action_id"], int(ref), channel_id, ts, str(name), action_ts)


class OncallClicks:
    def __init__(self, store: Store, web: WebClient, categories: Sequence[str]) -> None:
        self.store = store
        self.web = web
        self.categories = categories
        self.views = TakeViews(store)
        self.incidents = Incidents(store)
        self.feedback = FeedbackStore(store)

    def handle(self, payload: dict[str, Any]) -> None:
        """Store what the click says (StoreUnavailable propagates: the click is not acknowledged)."""
        try:
            click = read_click(payload)
            delivery, incident = self._check(click)
        except Refused as refusal:
            metrics.FEEDBACK_REFUSED.labels(refusal.reason).inc()
            log.warning("refused a Slack click, stored nothing: %s", refusal)
            return
        at = datetime.fromtimestamp(float(click.action_ts), UTC)
        if click.action == MUTE:
            self._mute(click, incident)
        elif take(self.store, target_of(delivery), click.user, "slack", at):
            self._redraw(delivery, incident)

    def _check(self, click: OncallClick) -> tuple[DeliveryRow, IncidentRow | None]:
        """The delivery and, for an incident alert, its incident; Refused unless the click came from
        the message the store says the alert is."""
        with self.store.session(read_only=True) as session:
            delivery = session.get(DeliveryRow, click.delivery_id)
        if delivery is None:
            raise Refused("unknown_message", f"no alert was posted for delivery {click.delivery_id}")
        incident = self.incidents.get(delivery.incident_id) if delivery.incident_id is not None else None
        if incident is not None and incident.opener_id == delivery.id and incident.slack_ts:
            place, ref = incident.slack_channel, incident.slack_ts
        else:
            incident = None
            receipt = self.feedback.receipt(delivery.id)
            place, ref = (receipt.place, receipt.ref) if receipt is not None else (None, None)
        if (place, ref) != (click.channel, click.ts):
            raise Refused("unknown_message", f"delivery {click.delivery_id}'s alert is not {click.ts[:40]}")
        if click.action == MUTE and incident is None:
            raise Refused("malformed", "only an incident alert has a mute button")
        return delivery, incident

    def _mute(self, click: OncallClick, incident: IncidentRow | None) -> None:
        assert incident is not None
        matchers = list(self.views.for_incident(incident).mute)
        made = hashlib.sha256(f"{click.action_ts}:{click.user}:{incident.id}".encode()).hexdigest()[:12]
        comment = f"muted from incident {incident.id}'s alert in Slack"
        silence_id = silences.add(self.store, matchers, silences.MUTE_FOR, comment, click.user, made)
        log.info("silence %s by %s from incident %s: %s", silence_id, click.user, incident.id, matchers)

    def _redraw(self, delivery: DeliveryRow, incident: IncidentRow | None) -> None:
        """Show who took it; a failure leaves the alert as it was (the take is stored)."""
        try:
            if incident is not None:
                view = build(incident, self.incidents.members(incident.id))
                take_view = self.views.for_incident(incident)
                if view.count == 1:
                    text = slack.fallback_text(delivery.payload, "new")
                    blocks = slack.blocks(delivery.payload, "new", take=take_view)
                else:
                    text, blocks = slack.incident_text(view), slack.incident_blocks(view, take=take_view)
                self.web.chat_update(
                    channel=incident.slack_channel, ts=incident.slack_ts, text=text, blocks=blocks
                )
                return
            receipt = self.feedback.receipt(delivery.id)
            assert receipt is not None
            labels = self.feedback.labels_of(delivery.message_id)
            slack.redraw_alert(
                self.web,
                receipt,
                delivery.payload,
                labels,
                self.categories,
                self.views.for_delivery(delivery),
            )
        except (SlackApiError, SlackClientError, OSError, StoreUnavailable) as error:
            log.warning("could not show who took delivery %s's alert: %s", delivery.id, error)
