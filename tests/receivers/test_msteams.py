"""Teams receivers end to end: routed cases through the outbox to a Workflows webhook stand-in."""

import pytest

from tests.fakes.teams_server import FakeTeams
from tests.receivers.routed import outbox, route_case, statuses, tree_of, wait_for
from triage.settings import Settings

ROUTING = """
receivers:
  - {name: log, console: {}}
  - {name: teams, msteams: {webhook_url: TEST_TEAMS_WEBHOOK_URL}}
route:
  receiver: log
  routes:
    - {matchers: ['urgency >= high'], receiver: teams}
"""
MENTIONS = (
    "<at>CEO</at> <AT id='0'>all</AT> @channel @here <!channel> <!here> <@U123> [login](https://evil.example)"
)


@pytest.fixture
def teams(monkeypatch):
    with FakeTeams() as fake:
        monkeypatch.setenv("TEST_TEAMS_WEBHOOK_URL", fake.webhook_url)
        yield fake


@pytest.fixture
def settings(tmp_path):
    return Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")


def test_a_routed_case_is_one_adaptive_card_with_what_an_on_call_reads(teams, settings, store):
    tree = tree_of(ROUTING)
    [delivery] = route_case(
        store,
        tree,
        "Checkout returns 503 for everyone since 9:00",
        subject="Checkout down",
        customer={"name": "Dana", "tier": "enterprise"},
        ticket={"id": 48211, "url": "https://acme.zendesk.com/agent/tickets/48211"},
    )
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("teams", "sent", 1)], "the card")
    [card] = teams.cards
    texts = teams.texts(card)
    assert texts[0] == "URGENT · outage · Dana (enterprise)"
    assert "Checkout is down for the whole team" in texts  # the summary
    assert "Checkout returns 503 for everyone since 9:00" in texts
    assert "Confidence: very likely" in texts and "Sentiment: negative" in texts
    assert "Why you got this: urgency >= high (route.routes[0] in the routing file)" in texts
    assert any(f"triage delivery {delivery.id}" in text for text in texts)
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Ticket 48211",
            "url": "https://acme.zendesk.com/agent/tickets/48211",
        }
    ]


def test_customer_text_can_never_mention_anyone(teams, settings, store):
    tree = tree_of(ROUTING)
    route_case(
        store,
        tree,
        f"Help {MENTIONS}",
        subject=f"Down {MENTIONS}",
        customer={"name": "<at>Boss</at>"},
    )
    with outbox(settings, store, tree):
        wait_for(lambda: teams.cards, "the card")
    [card] = teams.cards
    assert teams.mentions(card) == [] and "entities" not in card["msteams"]
    shown = " ".join(teams.texts(card))
    assert "<at" not in shown.lower() and "</at>" not in shown.lower()
    assert "‹at›CEO‹/at›" in shown  # still readable, not a tag
    assert "](" not in shown and "[login] (https://evil.example)" in shown  # no markdown link either


def test_429_is_waited_out_and_the_card_posted_once(teams, settings, store):
    teams.fail_next(429, retry_after=1)
    tree = tree_of(ROUTING)
    route_case(store, tree, "Checkout is down")
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store) == [("teams", "sent", 2)], "the post after the 429")
    assert teams.rejected_429 == 1 and len(teams.cards) == 1


def test_a_wrong_webhook_url_is_retried_not_lost(teams, settings, store, monkeypatch):
    monkeypatch.setenv("TEST_TEAMS_WEBHOOK_URL", teams.webhook_url.replace("wf-0123", "wf-gone"))
    tree = tree_of(ROUTING)
    route_case(store, tree, "Checkout is down")
    with outbox(settings, store, tree):
        wait_for(lambda: statuses(store)[0][2] >= 1 and statuses(store)[0][1] == "pending", "the failed try")
    assert teams.cards == []
