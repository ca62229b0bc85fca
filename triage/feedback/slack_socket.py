"""Clicks on the alerts' feedback buttons, received through Slack's Socket Mode (no public URL).

slack_sdk's built-in Socket Mode client asks `apps.connections.open` (with the app-level token) for a
WebSocket URL, connects, and reconnects when Slack says `disconnect` or the connection goes stale. Each
envelope is acknowledged (`{"envelope_id": ...}`) once it is handled: a click is stored, or refused and
logged. An envelope whose click could not be stored (the store is down) is not acknowledged, so Slack
sends it again; one sent twice is acknowledged and stored once. After a valid click, the alert is
redrawn to show who corrected what.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from triage.feedback.recorder import Recorder
from triage.feedback.slack_clicks import Refused, check, judgements, read_clicks
from triage.oncall import slack_clicks as oncall_clicks
from triage.oncall.views import TakeViews
from triage.ops import metrics
from triage.receivers.slack import SlackConfigError, redraw_alert
from triage.store import StoreUnavailable
from triage.store.tables import ReceiptRow

log = logging.getLogger(__name__)
SDK_LOG = logging.getLogger(f"{__name__}.sdk")  # slack_sdk's lines: each (re)connection says five
SDK_LOG.setLevel(logging.WARNING)


class SlackButtons:
    def __init__(self, app_token: str, web: WebClient, recorder: Recorder, categories: Sequence[str]) -> None:
        """`web`: the bot's WebClient (apps.connections.open is called with the app token, chat.update
        with the bot's). The on-call buttons' clicks come through the same connection (Slack spreads
        an app's envelopes over its connections) and are handed to triage/oncall/slack_clicks.py."""
        self.web = web
        self.oncall = oncall_clicks.OncallClicks(recorder.store, web, categories)
        self.recorder = recorder
        self.categories = categories
        self._redraw_lock = threading.Lock()
        self.client = SocketModeClient(app_token=app_token, web_client=web, logger=SDK_LOG)
        self.client.socket_mode_request_listeners.append(self._on_request)

    def start(self) -> None:
        """Open the Socket Mode connection; a rejected app token stops the worker with one line."""
        try:
            self.client.connect()
        except SlackApiError as error:
            self.client.close()
            raise SlackConfigError(
                "Slack rejected TRIAGE_SLACK__APP_TOKEN: apps.connections.open: "
                f"{error.response.get('error')}"
            ) from None
        except (SlackClientError, OSError) as error:
            self.client.close()
            raise SlackConfigError(f"cannot open a Socket Mode connection to Slack: {error}") from None
        log.info("receiving clicks on the alerts' feedback buttons through Socket Mode")

    def stop(self) -> None:
        self.client.close()

    def _on_request(self, client: SocketModeClient, request: SocketModeRequest) -> None:
        if request.type != "interactive":  # events and slash commands are not ours: nothing to do
            client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
            return
        try:
            if oncall_clicks.owns(request.payload):
                self.oncall.handle(request.payload)
                clicked = None
            else:
                clicked = self.handle(request.payload)
        except StoreUnavailable as error:
            log.warning(
                "a Slack click could not be stored, not acknowledged (Slack sends it again): %s", error
            )
            return
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if clicked is not None:
            self._redraw(clicked)

    def handle(self, payload: Any) -> ReceiptRow | None:
        """Store what a click says; returns the clicked alert's receipt, or None when it is refused."""
        try:
            clicks = read_clicks(payload, self.categories)
            receipts = [self.recorder.feedback.receipt(click.delivery_id) for click in clicks]
            for click, receipt in zip(clicks, receipts, strict=True):
                check(click, receipt)
        except Refused as refusal:
            metrics.FEEDBACK_REFUSED.labels(refusal.reason).inc()
            log.warning("refused a Slack click, stored nothing: %s", refusal)
            return None
        corrections = []
        for click, receipt in zip(clicks, receipts, strict=True):
            correction = self.recorder.correction(judgements(click, receipt))
            if correction is not None:
                corrections.append(correction)
        stored = self.recorder.record(corrections)
        for label in stored:
            log.info(
                "label from Slack: %s %s -> %s by %s",
                label.field,
                label.model_value,
                label.team_value,
                label.person_name or label.person_id,
                extra={"message_id": label.message_id},
            )
        return receipts[-1]

    def _redraw(self, receipt: ReceiptRow) -> None:
        """Show every label of the message on the alert; a failure leaves the alert as it was.

        One redraw at a time: Socket Mode hands clicks to several threads, and two redraws of one alert
        racing could post the older picture last (the labels are read under the lock, so the redraw
        that posts last shows every label stored before it)."""
        with self._redraw_lock:
            self._redraw_now(receipt)

    def _redraw_now(self, receipt: ReceiptRow) -> None:
        try:
            case = self.recorder.feedback.delivery_payload(receipt.delivery_id)
            labels = self.recorder.feedback.labels_of(receipt.message_id)
            take = TakeViews(self.recorder.store).for_delivery_id(receipt.delivery_id)
            redraw_alert(self.web, receipt, case, labels, self.categories, take)
        except (SlackApiError, SlackClientError, OSError, StoreUnavailable) as error:
            log.warning("could not show the correction on the alert %s: %s", receipt.ref, error)
