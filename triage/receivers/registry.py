"""Clients for the hosted services (built and checked once) and one sender per receiver in a tree."""

from __future__ import annotations

import os
from collections.abc import Callable

from kafka import KafkaProducer

from triage.feedback.fields import category_choices
from triage.helpdesks import SETTINGS, configured
from triage.receivers import email, helpdesk, pagerduty, posting, slack
from triage.receivers.base import Sender, SkippingSender
from triage.receivers.console import ConsoleSender
from triage.receivers.msteams import MSTeamsSender
from triage.receivers.pagerduty import PagerDutySender
from triage.receivers.results import ResultsSender
from triage.receivers.results_format import ResultsEncoder
from triage.receivers.webhook import WebhookSender
from triage.routing import RESULTS_RECEIVER, Receiver, RoutingTree
from triage.settings import Settings
from triage.store import Store
from triage.store.feedback import FeedbackStore
from triage.store.incidents import Incidents


class Receivers:
    def __init__(self, settings: Settings, producer: KafkaProducer, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.results = ResultsSender(producer, settings.kafka, encoder=ResultsEncoder(settings))
        self.slack = (
            slack.make_client(settings.slack.token, settings.slack.base_url) if settings.slack.token else None
        )
        self.helpdesks = configured(settings)  # zendesk, gorgias, kustomer, freshdesk: those with a URL
        # the feedback buttons' category menu; None: alerts carry no buttons (clicks would reach nobody)
        buttons = settings.feedback.enabled and bool(settings.slack.app_token)
        self.categories = category_choices(settings) if buttons else None
        self.http = posting.make_client()  # PagerDuty, Teams and webhooks

        self.buttons = buttons  # and the on-call ones (I'm on it, mute similar)

    def check(self) -> None:
        """Fail fast on a bad Slack token, helpdesk credentials or SMTP server (SlackConfigError,
        HelpdeskConfigError, EmailConfigError), or a results schema the registry refuses (RegistryError)."""
        if self.results.encoder is not None:
            self.results.encoder.prepare()
        if self.slack is not None:
            slack.check_token(self.slack)
        if self.helpdesks:
            helpdesk.check_all(self.helpdesks)
        if self.settings.smtp.host:
            email.check_server(self.settings.smtp)

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
                        self.helpdesks, receiver.helpdesk, Incidents(self.store), FeedbackStore(self.store)
                    )
                    if self.helpdesks
                    else SkippingSender(f"no helpdesk is configured (none of {', '.join(SETTINGS.values())})")
                )
            else:
                senders[name] = self._beyond_slack(receiver)
                senders.update(pagerduty.follow_up_senders(name, senders[name], self.store))
        return senders

    def _beyond_slack(self, receiver: Receiver) -> Sender:
        """PagerDuty, Teams, webhook and e-mail receivers; their secrets come from the environment
        variables the routing file names (a variable not set: every delivery is skipped, said at start)."""
        incidents = Incidents(self.store)
        if receiver.pagerduty is not None:
            key = receiver.pagerduty.routing_key
            return _needs(
                key,
                lambda value: PagerDutySender(
                    self.http, self.settings.pagerduty.events_url, value, incidents
                ),
            )
        if receiver.msteams is not None:
            url = receiver.msteams.webhook_url
            return _needs(url, lambda value: MSTeamsSender(self.http, receiver.name, value))
        if receiver.webhook is not None:
            hook = receiver.webhook
            return _needs(
                hook.secret, lambda value: WebhookSender(self.http, receiver.name, hook.url, value, incidents)
            )
        assert receiver.email is not None, f"receiver {receiver.name}: unknown kind {receiver.kind}"
        if not self.settings.smtp.host:
            return SkippingSender("e-mail is not configured (no TRIAGE_SMTP__HOST)")
        return email.EmailSender(self.settings.smtp, receiver.name, receiver.email.to, self.store)


def _needs(variable: str, make: Callable[[str], Sender]) -> Sender:
    """A sender made with the environment variable's value, or one that skips when it is not set."""
    value = os.environ.get(variable, "")
    return make(value) if value else SkippingSender(f"the environment variable {variable} is not set")
