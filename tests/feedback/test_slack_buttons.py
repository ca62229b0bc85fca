"""Clicks on an alert's buttons through the Socket Mode stand-in, driven by slack_sdk's real client:
stored once, the alert redrawn, a changed urgency re-routed once; forged and malformed ones refused."""

from __future__ import annotations

import copy
import time

import pytest
from sqlalchemy import func, select

from tests.fakes.slack_socket import block_actions
from tests.feedback.conftest import ANA, CATEGORIES, sample
from tests.receivers.conftest import send_one, store_case
from tests.test_cli import wait_for
from triage.feedback.fields import BLOCK_PREFIX
from triage.feedback.recorder import Recorder
from triage.feedback.slack_socket import SlackButtons
from triage.receivers.slack import SlackSender, make_client
from triage.store.tables import DeliveryRow, LabelRow

CX_ROUTE = ("route.routes[2]", ("sentiment = negative",))


@pytest.fixture
def buttons(slack, socket_mode, store, pipeline):
    woken = []
    recorder = Recorder(store, pipeline.route, lambda: woken.append(1))
    part = SlackButtons("xapp-test", make_client("xoxb-test", slack.base_url), recorder, CATEGORIES)
    part.start()
    socket_mode.wait_connected()
    part.woken = woken
    yield part
    part.stop()


def posted_alert(slack, store, channel="#cx", receiver="cx", **case):
    """A case stored and alerted in `channel` by the real sender, with feedback buttons."""
    store_case(store, receiver, urgency=case.pop("urgency", "normal"), route=CX_ROUTE, **case)
    sender = SlackSender(make_client("xoxb-test", slack.base_url), channel, store, CATEGORIES, takes=True)
    assert send_one(store, sender, receiver).status == "sent"
    return slack.messages_in(channel)[-1]


def labels(store) -> list[LabelRow]:
    with store.session() as session:
        return list(session.scalars(select(LabelRow).order_by(LabelRow.id)))


def deliveries(store, receiver: str) -> list[DeliveryRow]:
    with store.session() as session:
        return list(session.scalars(select(DeliveryRow).where(DeliveryRow.receiver == receiver)))


def shown(message: dict) -> str:
    return str(message["blocks"])


def test_an_alert_carries_right_and_menus_with_the_configured_categories(slack, store):
    alert = posted_alert(slack, store)
    [actions] = [block for block in alert["blocks"] if block.get("block_id", "").startswith(BLOCK_PREFIX)]
    right, urgency, sentiment, category = actions["elements"]
    assert (right["action_id"], right["text"]["text"]) == ("triage_right", "Right")
    assert [o["value"] for o in urgency["options"]] == ["low", "normal", "high", "urgent"]
    assert urgency["initial_option"]["value"] == "normal"  # the model's value, until someone sets one
    assert [o["value"] for o in sentiment["options"]] == ["negative", "neutral", "positive"]
    assert [o["value"] for o in category["options"]] == CATEGORIES
    assert category["initial_option"]["value"] == "outage"


def test_a_click_is_stored_once_the_alert_shows_it_and_the_new_urgency_reaches_oncall_once(
    slack, socket_mode, store, buttons
):
    alert = posted_alert(slack, store)
    before = sample("triage_corrections_total", field="urgency", source="slack")
    payload = block_actions(alert, "triage_urgency", ANA, value="urgent")

    envelope = socket_mode.send_interactive(payload)
    assert socket_mode.wait_ack(envelope)
    [label] = labels(store)
    assert (label.field, label.model_value, label.team_value) == ("urgency", "normal", "urgent")
    assert (label.source, label.person_id, label.person_name) == ("slack", "U0ANA", "ana")
    assert label.place == f"slack #cx {alert['ts']}"
    assert sample("triage_corrections_total", field="urgency", source="slack") == before + 1

    wait_for(lambda: slack.updates, 30, "the alert redrawn")  # after the acknowledgement
    assert [u["ts"] for u in slack.updates] == [alert["ts"]]
    assert "ana set urgency urgent (model: normal)" in shown(alert)  # the stand-in's message, redrawn
    [actions] = [block for block in alert["blocks"] if block.get("block_id", "").startswith(BLOCK_PREFIX)]
    assert actions["elements"][1]["initial_option"]["value"] == "urgent"

    [rerouted] = deliveries(store, "oncall")  # urgency >= high: on-call now hears of it
    assert rerouted.payload["urgency"] == "urgent" and rerouted.status == "pending"
    assert rerouted.payload["correction"] == {
        "field": "urgency",
        "value": "urgent",
        "model": "normal",
        "by": "ana",
    }
    assert len(deliveries(store, "cx")) == 1 and buttons.woken

    socket_mode.send_interactive(payload, envelope_id=envelope)  # Slack sends an envelope again
    assert socket_mode.wait_ack(envelope, count=2)
    wait_for(lambda: len(slack.updates) == 2, 30, "the alert redrawn again (as it was)")
    assert len(labels(store)) == 1 and len(deliveries(store, "oncall")) == 1
    assert sample("triage_corrections_total", field="urgency", source="slack") == before + 1

    oncall = SlackSender(make_client("xoxb-test", slack.base_url), "#oncall", store, CATEGORIES)
    assert send_one(store, oncall, "oncall").status == "sent"
    [paged] = slack.messages_in("#oncall")
    assert "ana set the urgency to *urgent* (the model said normal)" in shown(paged)


def test_right_confirms_urgency_sentiment_and_category_and_reroutes_nothing(
    slack, socket_mode, store, buttons
):
    alert = posted_alert(slack, store)
    envelope = socket_mode.send_interactive(block_actions(alert, "triage_right", ANA))
    assert socket_mode.wait_ack(envelope)
    wait_for(lambda: slack.updates, 30, "the alert redrawn")
    stored = labels(store)
    assert sorted(label.field for label in stored) == ["category", "sentiment", "urgency"]
    assert all(label.team_value == label.model_value for label in stored)
    assert "ana: right" in shown(alert)
    assert deliveries(store, "oncall") == []


def test_a_click_after_slack_asked_for_a_new_connection_still_arrives(slack, socket_mode, store, buttons):
    alert = posted_alert(slack, store)
    socket_mode.disconnect()
    socket_mode.wait_connected(connections=2)  # through apps.connections.open again
    envelope = socket_mode.send_interactive(block_actions(alert, "triage_category", ANA, value="billing"))
    assert socket_mode.wait_ack(envelope)
    [label] = labels(store)
    assert (label.field, label.model_value, label.team_value) == ("category", "outage", "billing")


def forged(alert: dict, change) -> dict:
    payload = block_actions(alert, "triage_urgency", ANA, value="high")
    change(payload)
    return payload


def _set(path: list, value):
    def change(payload: dict) -> None:
        target = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


REFUSALS = {
    "not an object": (lambda alert: "urgency=high", "malformed"),
    "a view submission": (lambda alert: {"type": "view_submission", "view": {}}, "malformed"),
    "no actions": (lambda alert: forged(alert, _set(["actions"], [])), "malformed"),
    "a value the menu lacks": (
        lambda alert: forged(alert, _set(["actions", 0, "selected_option", "value"], "catastrophic")),
        "malformed",
    ),
    "another app's block": (
        lambda alert: forged(alert, _set(["actions", 0, "block_id"], "xyz:1")),
        "malformed",
    ),
    "an unknown action": (
        lambda alert: forged(alert, _set(["actions", 0, "action_id"], "delete")),
        "malformed",
    ),
    "no user": (lambda alert: forged(alert, _set(["user"], {})), "malformed"),
    "a delivery never alerted": (
        lambda alert: forged(alert, _set(["actions", 0, "block_id"], "triage_feedback:999999")),
        "unknown_message",
    ),
    "another message of the channel": (
        lambda alert: forged(alert, _set(["container", "message_ts"], "1700000000.000001")),
        "unknown_message",
    ),
    "another channel": (
        lambda alert: block_actions(alert, "triage_urgency", ANA, value="high", channel="#general"),
        "wrong_channel",
    ),
}


def test_forged_and_malformed_clicks_are_acknowledged_refused_and_store_nothing(
    slack, socket_mode, store, buttons, caplog
):
    alert = posted_alert(slack, store)
    blocks_before = copy.deepcopy(alert["blocks"])
    for case, (build, reason) in REFUSALS.items():
        before = sample("triage_feedback_refused_total", reason=reason)
        envelope = socket_mode.send_interactive(build(alert))
        assert socket_mode.wait_ack(envelope), case  # acknowledged, so Slack does not send it again
        assert sample("triage_feedback_refused_total", reason=reason) == before + 1, case
        assert f"refused a Slack click, stored nothing: {reason}" in caplog.records[-1].getMessage(), case
    time.sleep(0.3)  # a redraw would follow an acknowledgement at once
    assert labels(store) == [] and deliveries(store, "oncall") == []
    assert slack.updates == [] and alert["blocks"] == blocks_before


def test_several_people_correcting_one_alert_are_all_listed(slack, socket_mode, store, buttons):
    alert = posted_alert(slack, store)
    for user, action, value in (
        (ANA, "triage_category", "bug"),
        ({"id": "U0BEN", "name": "ben"}, "triage_right", None),
    ):
        envelope = socket_mode.send_interactive(block_actions(alert, action, user, value=value))
        assert socket_mode.wait_ack(envelope)
    wait_for(lambda: len(slack.updates) == 2, 30, "the alert redrawn twice")
    assert "ana set category bug (model: outage) · ben: right" in shown(alert)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(LabelRow)) == 4
