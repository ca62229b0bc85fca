"""The console receiver's line: message text only as the alert's summary, with PII masked (docs/operations.md,
"Logs"), also where the summary is cut to its 200 characters."""

from __future__ import annotations

import logging

import pytest

from triage.classify.rules import RulesClassifier
from triage.message import SupportMessage
from triage.pipeline import alert_details, alert_payload, case_record
from triage.receivers.base import Outcome
from triage.receivers.console import ConsoleSender
from triage.routing.tree import Match
from triage.store.tables import DeliveryRow

LEAD = ("I was charged twice and I still wait for my refund " * 4)[:189] + " "  # 190 characters
CASES = {
    "a card number": ("4111111111", "I was charged twice on card 4111111111111111, please refund it."),
    "an e-mail address": ("priya.nair", "I was charged twice, please reply to priya.nair@example.com today."),
    # the summary is cut at 200 characters: 9 characters of what starts at 190 would stay
    "a card number at the cut": ("41111111", f"{LEAD}4111111111111111 please"),
    "an e-mail address at the cut": ("priya", f"{LEAD}priya.nair@example.com please"),
}


def console_line(body: str, caplog: pytest.LogCaptureFixture) -> str:
    """The line the console receiver logs for a message, judged by an offline backend as the worker does."""
    message = SupportMessage(id="m-1", conversation_id="conv-1", body=body)
    triage = RulesClassifier(["billing", "other"]).classify(message)
    case = {**case_record(message, triage, ["log"]), **alert_details(message)}
    payload = alert_payload(case, Match("log", "route", None, None, ()))
    delivery = DeliveryRow(message_id=message.id, conversation_id="conv-1", receiver="log", payload=payload)
    with caplog.at_level(logging.INFO, logger="triage.console"):
        assert ConsoleSender("log").send_batch([delivery]) == [Outcome("sent")]
    [record] = [record for record in caplog.records if record.name == "triage.console"]
    return record.getMessage()


@pytest.mark.parametrize("secret, body", CASES.values(), ids=CASES)
def test_pii_in_a_message_never_reaches_the_console_line(secret, body, caplog):
    line = console_line(body, caplog)
    assert line.startswith("[log] m-1 ") and "charged twice" in line
    assert secret not in line, line
    assert "[CARD]" in line or "[EMAIL]" in line or line.endswith("…"), line
