"""The stand-ins for PagerDuty and Teams refuse what the real services refuse."""

import httpx

from tests.fakes.pagerduty_server import FakePagerDuty
from tests.fakes.teams_server import CARD, FakeTeams


def test_pagerduty_refuses_a_bad_event_and_keeps_alerts_by_dedup_key():
    with FakePagerDuty() as pd:
        key = next(iter(pd.routing_keys))
        bad = {"routing_key": key, "event_action": "trigger", "dedup_key": "k", "payload": {"source": "x"}}
        answer = httpx.post(pd.events_url, json=bad)
        assert answer.status_code == 400 and answer.json()["status"] == "invalid event"
        assert "'payload.summary' must be 1 to 1024 characters" in answer.json()["errors"]
        good = {**bad, "payload": {"summary": "s", "source": "x", "severity": "critical"}}
        assert httpx.post(pd.events_url, json=good).status_code == 202
        assert httpx.post(pd.events_url, json=good).json()["dedup_key"] == "k"
        assert len(pd.alerts) == 1 and len(pd.alerts[0]["events"]) == 2  # the same open alert
        httpx.post(pd.events_url, json={"routing_key": key, "event_action": "resolve", "dedup_key": "k"})
        httpx.post(pd.events_url, json=good)
        assert [alert["status"] for alert in pd.alerts] == [
            "resolved",
            "triggered",
        ]  # a new one after resolve


def test_teams_refuses_a_message_that_is_not_an_adaptive_card():
    with FakeTeams() as teams:
        card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "hi"}]}
        wrong = {"type": "message", "attachments": [{"contentType": "application/json", "content": card}]}
        assert httpx.post(teams.webhook_url, json=wrong).status_code == 400
        right = {"type": "message", "attachments": [{**wrong["attachments"][0], "contentType": CARD}]}
        assert httpx.post(teams.webhook_url, json=right).status_code == 202
        assert teams.cards == [card]
        assert httpx.post(teams.webhook_url.replace("sig=s3cret", "sig=guess"), json=right).status_code == 404
