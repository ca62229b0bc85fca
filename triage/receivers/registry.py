"""Clients for the hosted services (built and checked once) and one sender per receiver in a tree."""

from __future__ import annotations

from kafka import KafkaProducer

from triage.feedback.fields import category_choices
from triage.receivers import helpdesk, slack
from triage.receivers.base import Sender, SkippingSender
from triage.receivers.console import ConsoleSender
from triage.receivers.results import ResultsSender
from triage.routing import RESULTS_RECEIVER, RoutingTree
from triage.settings import Settings
from triage.store import Store
from triage.store.feedback import FeedbackStore
from triage.store.incidents import Incidents


class Receivers:
    def __init__(self, settings: Settings, producer: KafkaProducer, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.results = ResultsSender(producer, settings.kafka)
        self.slack = (
            slack.make_client(settings.slack.token, settings.slack.base_url) if settings.slack.token else None
        )
        self.helpdesk = helpdesk.make_client(settings.helpdesk) if settings.helpdesk.base_url else None
        # the feedback buttons' category menu; None: alerts carry no buttons (clicks would reach nobody)
        buttons = settings.feedback.enabled and bool(settings.slack.app_token)
        self.categories = category_choices(settings) if buttons else None
        self.buttons = buttons  # and the on-call ones (I'm on it, mute similar)

    def check(self) -> None:
        """Fail fast on a bad Slack token or helpdesk credentials (SlackConfigError, HelpdeskConfigError)."""
        if self.slack is not None:
            slack.check_token(self.slack)
        if self.helpdesk is not None:
            helpdesk.check_credentials(self.helpdesk)

    def idle(self, tree: RoutingTree) -> list[tuple[str, str]]:
        """Receivers of the tree that will skip every delivery, with the reason (a service not configured)."""
        return [
            (tree.receivers[name].describe(), sender.reason)
            for name, sender in self.senders(tree).items()
            if isinstance(sender, SkippingSender)
        ]

    def senders(self, tree: RoutingTree) -> dict[str, Sender]:
        senders: dict[str, Sender] = {RESULTS_RECEIVER: self.results}
        for name, receiver in tree.receivers.items():
            if receiver.console is not None:
                senders[name] = ConsoleSender(name)
            elif receiver.slack is not None:
                senders[name] = (
                    slack.SlackSender(
                        self.slack, receiver.slack.channel, self.store, self.categories, takes=self.buttons
                    )
                    if self.slack is not None
                    else SkippingSender("Slack is not configured (no TRIAGE_SLACK__TOKEN)")
                )
            elif receiver.helpdesk is not None:
                senders[name] = (
                    helpdesk.HelpdeskSender(
                        self.helpdesk, receiver.helpdesk, Incidents(self.store), FeedbackStore(self.store)
                    )
                    if self.helpdesk is not None
                    else SkippingSender("the helpdesk is not configured (no TRIAGE_HELPDESK__BASE_URL)")
                )
        return senders
