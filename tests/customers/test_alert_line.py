"""The history's line in every alert, and the earlier case about the same problem."""

import pytest

from triage.classify.rules import RulesClassifier
from triage.message import SupportMessage
from triage.pipeline import alert_details, case_record
from triage.receivers.layout import case_alert, history_facts
from triage.receivers.slack import facts_block

HISTORY = {
    "contacts_24h": 3,
    "contacts_7d": 4,
    "channels_7d": ["chat", "email"],
    "urgent_7d": 1,
    "sentiment_trend": "worsening",
    "first_contact_days": 12,
    "earlier_case_id": "zd-48211-1",
}


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({}, "3rd contact in 24 h · chat, e-mail · mood worsening · 1 other urgent case this week"),
        (
            {"contacts_24h": 1, "contacts_7d": 2},
            "2nd contact this week · chat, e-mail · mood worsening · 1 other urgent case this week",
        ),
        (
            {"contacts_24h": 11, "urgent_7d": 2, "sentiment_trend": "steady"},
            "11th contact in 24 h · chat, e-mail · 2 other urgent cases this week",
        ),
        (
            {"contacts_24h": 22, "urgent_7d": 0, "channels_7d": ["chat"], "sentiment_trend": "improving"},
            "22nd contact in 24 h · mood improving",
        ),
        (
            {
                "contacts_24h": 1,
                "contacts_7d": 1,
                "channels_7d": ["email"],
                "urgent_7d": 0,
                "sentiment_trend": "steady",
                "first_contact_days": 0,
            },
            "first contact",
        ),
    ],
)
def test_the_history_line(changes, line):
    assert history_facts({"customer_history": {**HISTORY, **changes}})["Customer history"] == line


def test_every_receiver_shows_the_line_and_the_earlier_case():
    message = SupportMessage(id="m-9", body="Charged twice again", channel="chat", customer={"id": "c-9"})
    triage = RulesClassifier(["billing", "other"]).classify(message)
    case = {**case_record(message, triage, ["cx"], HISTORY), **alert_details(message)}
    assert case["customer_history"] == HISTORY  # the results record carries it
    facts = case_alert(case).facts  # Teams, e-mail, the webhook, PagerDuty's details
    assert facts["Customer history"].startswith("3rd contact in 24 h")
    assert facts["Earlier case"] == "zd-48211-1 (same problem, this week)"
    slack = " ".join(field["text"] for field in facts_block(case)["fields"])
    assert "3rd contact in 24 h · chat, e-mail · mood worsening" in slack and "zd-48211-1" in slack


def test_no_history_no_line():
    message = SupportMessage(id="m-1", body="Hello", channel="chat")
    case = {
        **case_record(message, RulesClassifier(["billing", "other"]).classify(message), ["cx"]),
        **alert_details(message),
    }
    assert case["customer_history"] is None
    assert "Customer history" not in case_alert(case).facts
