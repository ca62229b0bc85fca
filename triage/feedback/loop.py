"""The feedback loop's parts in a worker: Slack's buttons (Socket Mode), Zendesk's ticket events, and
the ticket changes of Gorgias, Kustomer and Freshdesk.

All need TRIAGE_FEEDBACK__ENABLED (the default); the buttons also need the Slack app token, each
helpdesk's reader that helpdesk configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from triage.feedback.fields import category_choices
from triage.feedback.freshdesk_changes import FreshdeskChanges
from triage.feedback.gorgias_changes import GorgiasChanges
from triage.feedback.kustomer_changes import KustomerChanges
from triage.feedback.recorder import Recorder, Route
from triage.feedback.slack_socket import SlackButtons
from triage.feedback.zendesk_events import TicketEvents
from triage.helpdesks.freshdesk import Freshdesk
from triage.helpdesks.gorgias import Gorgias
from triage.helpdesks.kustomer import Kustomer
from triage.helpdesks.zendesk import make_client
from triage.receivers import slack
from triage.settings import Settings
from triage.store import Store


class Part(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class FeedbackLoop:
    def __init__(self, parts: dict[str, Part]) -> None:
        self.parts = parts  # what each part does, in words -> the part

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, route: Route, wake: Callable[[], None]
    ) -> FeedbackLoop:
        if not settings.feedback.enabled:
            return cls({})
        recorder = Recorder(store, route, wake)
        categories = category_choices(settings)
        parts: dict[str, Part] = {}
        if settings.slack.token and settings.slack.app_token:
            web = slack.make_client(settings.slack.token, settings.slack.base_url)
            parts["Slack buttons (Socket Mode)"] = SlackButtons(
                settings.slack.app_token, web, recorder, categories
            )
        if settings.helpdesk.base_url:
            events = TicketEvents(
                make_client(settings.helpdesk),
                recorder,
                categories,
                settings.feedback.zendesk_poll_s,
            )
            parts[f"Zendesk ticket events every {settings.feedback.zendesk_poll_s:g}s"] = events
        poll = settings.feedback.helpdesk_poll_s
        if settings.gorgias.base_url:
            client = Gorgias.from_settings(settings.gorgias).client
            parts[f"Gorgias ticket changes every {poll:g}s"] = GorgiasChanges(
                client, recorder, categories, poll
            )
        if settings.kustomer.base_url:
            client = Kustomer.from_settings(settings.kustomer).client
            parts[f"Kustomer conversation changes every {poll:g}s"] = KustomerChanges(
                client, recorder, categories, poll
            )
        if settings.freshdesk.base_url:
            client = Freshdesk.from_settings(settings.freshdesk).client
            parts[f"Freshdesk ticket changes every {poll:g}s"] = FreshdeskChanges(
                client, recorder, categories, poll
            )
        return cls(parts)

    def describe(self) -> str:
        """`; feedback from Slack buttons (Socket Mode), Zendesk ticket events every 60s` for the start
        line; nothing when no part runs."""
        return f"; feedback from {', '.join(self.parts)}" if self.parts else ""

    def start(self) -> None:
        started: list[Part] = []
        try:
            for part in self.parts.values():
                part.start()
                started.append(part)
        except Exception:
            for part in started:
                part.stop()
            raise

    def stop(self) -> None:
        for part in self.parts.values():
            part.stop()
