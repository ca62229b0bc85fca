"""Which feedback parts a worker runs, and that TRIAGE_FEEDBACK__ENABLED=false turns every one off."""

from __future__ import annotations

import pytest

from tests.feedback.conftest import CATEGORIES
from tests.receivers.conftest import send_one, store_case
from triage.feedback.loop import FeedbackLoop
from triage.feedback.recorder import Recorder
from triage.feedback.slack_socket import SlackButtons
from triage.receivers.registry import Receivers
from triage.receivers.slack import SlackConfigError, make_client
from triage.settings import FeedbackSettings, HelpdeskSettings, Settings, SlackSettings
from triage.store import Store, StoreUnavailable


def settings_for(slack, zendesk, enabled: bool = True, app_token: str = "xapp-test") -> Settings:
    return Settings(
        slack=SlackSettings(token="xoxb-test", base_url=slack.base_url, app_token=app_token),
        helpdesk=HelpdeskSettings(
            base_url=zendesk.base_url, email=zendesk.email, api_token=zendesk.api_token
        ),
        feedback=FeedbackSettings(enabled=enabled, zendesk_poll_s=5),
    )


def alert_controls(slack, store, settings: Settings, tree) -> list[str]:
    """The block types of an alert the worker's own Slack sender posts with these settings."""
    store_case(store, "cx", route=("route.routes[2]", ("sentiment = negative",)))
    sender = Receivers(settings, None, store).senders(tree)["cx"]  # type: ignore[arg-type]
    assert send_one(store, sender, "cx").status == "sent"
    return [block["type"] for block in slack.messages_in("#cx")[-1]["blocks"]]


def test_with_feedback_on_alerts_carry_buttons_and_both_parts_run(slack, zendesk, store, pipeline, tree):
    settings = settings_for(slack, zendesk)
    loop = FeedbackLoop.from_settings(settings, store, pipeline.route, lambda: None)
    assert loop.describe() == "; feedback from Slack buttons (Socket Mode), Zendesk ticket events every 5s"
    assert "actions" in alert_controls(slack, store, settings, tree)


@pytest.mark.parametrize("enabled, app_token", [(False, "xapp-test"), (True, "")])
def test_off_or_without_an_app_token_no_buttons_and_no_connection(
    slack, zendesk, store, pipeline, tree, enabled, app_token
):
    settings = settings_for(slack, zendesk, enabled, app_token)
    loop = FeedbackLoop.from_settings(settings, store, pipeline.route, lambda: None)
    assert "Slack buttons (Socket Mode)" not in loop.parts
    assert ("Zendesk ticket events every 5s" in loop.parts) == enabled  # off: no ticket events read
    loop.start()
    loop.stop()
    assert "actions" not in alert_controls(slack, store, settings, tree)
    assert not [r for r in slack.requests if r["method"] == "apps.connections.open"]


def test_a_rejected_app_token_is_one_line(slack, socket_mode, store):
    buttons = SlackButtons(
        "xapp-revoked", make_client("xoxb-test", slack.base_url), Recorder(store), CATEGORIES
    )
    with pytest.raises(
        SlackConfigError,
        match=r"^Slack rejected TRIAGE_SLACK__APP_TOKEN: apps.connections.open: invalid_auth$",
    ):
        buttons.start()


def test_a_click_the_store_cannot_take_is_not_acknowledged(slack, socket_mode):
    unreachable = Store("postgresql+psycopg://postgres@127.0.0.1:9/nowhere")
    buttons = SlackButtons(
        "xapp-test", make_client("xoxb-test", slack.base_url), Recorder(unreachable), CATEGORIES
    )
    buttons.start()
    try:
        socket_mode.wait_connected()
        payload = {
            "type": "block_actions",
            "user": {"id": "U0ANA", "username": "ana"},
            "channel": {"id": "#cx"},
            "container": {"message_ts": "1764400000.000100"},
            "actions": [
                {"action_id": "triage_right", "block_id": "triage_feedback:1", "action_ts": "1764400001.5"}
            ],
        }
        envelope = socket_mode.send_interactive(payload)
        assert not socket_mode.wait_ack(envelope, timeout_s=3)  # Slack will send it again
        with pytest.raises(StoreUnavailable):
            buttons.handle(payload)
    finally:
        buttons.stop()


def test_each_configured_helpdesk_has_its_corrections_reader(store, pipeline):
    settings = Settings(
        gorgias={"base_url": "http://127.0.0.1:9", "email": "a@b.c", "api_key": "k"},
        freshdesk={"base_url": "http://127.0.0.1:9", "api_key": "k"},
        feedback=FeedbackSettings(helpdesk_poll_s=30),
    )
    loop = FeedbackLoop.from_settings(settings, store, pipeline.route, lambda: None)
    assert (
        loop.describe()
        == "; feedback from Gorgias ticket changes every 30s, Freshdesk ticket changes every 30s"
    )
    off = settings.model_copy(update={"feedback": FeedbackSettings(enabled=False)})
    assert FeedbackLoop.from_settings(off, store, pipeline.route, lambda: None).parts == {}
