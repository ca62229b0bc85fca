import json
import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import delete, update

from tests.receivers.conftest import send_one, store_case
from triage.receivers.base import DeliveryFailed, Outcome
from triage.receivers.outbox import Outbox
from triage.receivers.slack import SlackConfigError, SlackSender, check_token, make_client
from triage.store import DeliveryUpdate
from triage.store.tables import DeliveryRow, SlackThreadRow

MENTIONS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123ABC>",
    "<#C999|general>",
    "<https://evil.example|click>",
]


def sender(slack, store, channel="#support-urgent"):
    return SlackSender(make_client("xoxb-test", slack.base_url), channel, store)


def send(sender_, store, receiver="oncall"):
    return send_one(store, sender_, receiver)


def posted_blocks(slack, channel="#support-urgent") -> list[dict]:
    [posted] = slack.messages_in(channel)
    return posted["blocks"]


def texts(block: dict) -> list[str]:
    """Every text a block shows."""
    if "text" in block:
        return [block["text"]["text"]]
    return [item["text"] for item in block.get("fields") or block.get("elements") or []]


def blocks_showing(blocks: list[dict], text: str) -> list[dict]:
    return [block for block in blocks if any(text in shown for shown in texts(block))]


def fields(blocks: list[dict]) -> dict[str, str]:
    """The facts section as {name: value}."""
    [facts] = [block for block in blocks if "fields" in block]
    return dict(field["text"].removeprefix("*").split("*\n", 1) for field in facts["fields"])


LLM_CASE = {
    "body": "Checkout returns 503 for all users since 9:00. We are losing orders.",
    "subject": "Checkout down",
    "customer": {"name": "Dana", "tier": "enterprise"},
    "ticket": {"id": 48211, "url": "https://acme.zendesk.com/agent/tickets/48211"},
    "channel": "email",
    "judged": {"summary": "Enterprise checkout outage, orders lost", "model": "llm:gpt-4o-mini"},
}


def test_an_alert_says_each_thing_once_where_an_on_call_looks(slack, store):
    store_case(store, "oncall", **LLM_CASE)
    assert send(sender(slack, store), store).status == "sent"
    blocks = posted_blocks(slack)

    header, summary, quoted, facts, why, footer = blocks
    assert facts["type"] == "section"
    assert header["text"]["text"] == ":warning: HIGH · outage · Dana (enterprise)"
    assert summary["text"]["text"] == "*Enterprise checkout outage, orders lost*"
    assert quoted["text"]["text"] == (
        "*Checkout down*\n>Checkout returns 503 for all users since 9:00. We are losing orders."
    )
    assert fields(blocks) == {
        "Sentiment": ":disappointed: negative",
        "Confidence": "very likely",
        "Language": "English",
        "Channel": "email",
        "Ticket": "<https://acme.zendesk.com/agent/tickets/48211|Ticket 48211>",
    }
    assert why["text"]["text"] == (
        "*Why you got this:* `urgency &gt;= high` (route.routes[1] in the routing file)"
    )
    assert footer == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "confidence 80% · model llm:gpt-4o-mini"}],
    }
    for once in ("HIGH", "Enterprise checkout outage", "Checkout returns 503", "Dana", "80%", "gpt-4o-mini"):
        assert len(blocks_showing(blocks, once)) == 1, once
    assert slack.messages_in("#support-urgent")[0]["text"] == (
        "HIGH outage · Dana (enterprise): Enterprise checkout outage, orders lost"
    )


def test_a_summary_that_only_repeats_the_message_is_left_out(slack, store):
    body = "Hi! Our dashboard has been blank since this morning. Nobody on the team can work."
    store_case(store, "oncall", body=body, judged={"summary": "Hi!", "model": "embedded:e5-small"})
    store_case(
        store,
        "oncall",
        body="x",
        subject="Refund please",
        conversation="c2",
        judged={"summary": "Refund please"},
    )
    first, second = (m["blocks"] for m in sender_posts(slack, store, 2))
    assert len(blocks_showing(first, "Hi!")) == 1 and len(blocks_showing(first, "dashboard")) == 1
    assert len(blocks_showing(second, "Refund please")) == 1  # the subject is the summary


def sender_posts(slack, store, count: int) -> list[dict]:
    s = sender(slack, store)
    for _ in range(count):
        assert send(s, store).status == "sent"
    return slack.messages_in("#support-urgent")


def test_the_language_is_shown_and_whether_the_summary_is_in_english(slack, store):
    spanish = "No podemos pagar: el checkout devuelve un error 503 desde esta mañana."
    store_case(
        store,
        "oncall",
        body=spanish,
        judged={"language": "es", "summary": "Checkout fails with 503", "model": "llm:gpt-4o-mini"},
    )
    store_case(
        store,
        "oncall",
        body=spanish,
        conversation="c2",
        judged={"language": "es", "summary": "Checkout devuelve 503", "model": "embedded:e5-small"},
    )
    store_case(
        store,
        "oncall",
        body=spanish,
        conversation="c3",
        judged={"language": "es", "summary": spanish[:40], "model": "embedded:e5-small"},
    )
    store_case(
        store,
        "oncall",
        body="Falha total",
        conversation="c4",
        judged={"language": "xx", "summary": "Total failure"},
    )
    languages = [fields(m["blocks"])["Language"] for m in sender_posts(slack, store, 4)]
    assert languages == [
        "Spanish, summary in English",
        "Spanish, summary in the original language",
        "Spanish",  # the embedded model's summary is the first words: only the message is shown
        "xx, summary in the original language",
    ]


def test_every_message_with_a_link_has_one_and_none_has_an_empty_field(slack, store):
    review = {"channel": "review", "metadata": {"url": "https://reviews.example/acme/review/77"}}
    store_case(
        store,
        "oncall",
        conversation="ticket",
        **LLM_CASE | {"metadata": {"url": "https://elsewhere.example/x"}},
    )
    store_case(store, "oncall", conversation="review", **review)
    store_case(store, "oncall", conversation="script", metadata={"url": "javascript:alert(1)"})
    store_case(store, "oncall", conversation="none", ticket={"id": 5})
    ticket, source, script, nothing = (fields(m["blocks"]) for m in sender_posts(slack, store, 4))
    assert (
        ticket["Ticket"] == "<https://acme.zendesk.com/agent/tickets/48211|Ticket 48211>"
        and "Source" not in ticket
    )
    assert source["Source"] == "<https://reviews.example/acme/review/77|reviews.example>"
    for shown in (script, nothing):
        assert "Ticket" not in shown and "Source" not in shown
    for post in slack.messages_in("#support-urgent"):
        assert all(value.strip() for value in fields(post["blocks"]).values())
        assert "javascript" not in json.dumps(post["blocks"])


def test_why_you_got_this_names_every_matcher_of_the_route(slack, store):
    store_case(
        store,
        "cx-leads",
        route=("route.routes[2]", ("sentiment = negative", "customer.tier in (enterprise, pro)")),
    )
    store_case(store, "cx-leads", conversation="c2", route=("route.routes[0]", ()))
    store_case(store, "cx-leads", conversation="c3", route=("route", ()))
    posts = sender_posts_to(slack, store, "cx-leads", "#cx", 3)
    whys = [blocks_showing(p["blocks"], "Why you got this")[0]["text"]["text"] for p in posts]
    assert whys == [
        "*Why you got this:* `sentiment = negative` and `customer.tier in (enterprise, pro)` "
        "(route.routes[2] in the routing file)",
        "*Why you got this:* route.routes[0] in the routing file takes every message",
        "*Why you got this:* no other route took this message (the routing file's default receiver)",
    ]


def sender_posts_to(slack, store, receiver: str, channel: str, count: int) -> list[dict]:
    s = sender(slack, store, channel)
    for _ in range(count):
        assert send(s, store, receiver).status == "sent"
    return slack.messages_in(channel)


@pytest.mark.parametrize(
    ("confidence", "word"),
    [(0.99, "certain"), (0.95, "certain"), (0.85, "very likely"), (0.7, "likely"), (0.52, "unsure")],
)
def test_confidence_is_said_in_words_and_the_number_only_in_small_print(slack, store, confidence, word):
    store_case(store, "oncall", judged={"confidence": confidence})
    blocks = sender_posts(slack, store, 1)[0]["blocks"]
    assert fields(blocks)["Confidence"] == word
    assert blocks_showing(blocks, f"{confidence:.0%}") == [blocks[-1]] and blocks[-1]["type"] == "context"


def test_an_alert_keeps_block_kit_limits_whatever_the_input(slack, store):
    huge = "<!channel> & " * 2000
    store_case(
        store,
        "oncall",
        body=huge,
        subject=huge,
        customer={"name": huge, "tier": huge},
        channel=huge,
        judged={"summary": "& " * 100, "category": "c" * 300},
        route=("route.routes[1]", tuple(f"metadata.k{n} = {'&' * 400}" for n in range(20))),
    )
    blocks = sender_posts(slack, store, 1)[0]["blocks"]
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in blocks[1:]:
        for text in texts(block):
            assert len(text) <= (2000 if "fields" in block else 3000)
            assert not re.search(r"&[a-z]*…", text)  # no entity cut in half
    assert "<!channel>" not in json.dumps(blocks)


def test_customer_text_can_never_mention_anyone(slack, store):
    body = "Hey " + " ".join(MENTIONS) + " & please help"
    store_case(store, "oncall", body=body, subject="<!channel> urgent", customer={"name": "<@U0ADMIN>"})
    send(sender(slack, store), store)
    [posted] = slack.messages_in("#support-urgent")
    everything = json.dumps({"text": posted["text"], "blocks": posted["blocks"]})
    for mention in [*MENTIONS, "<@U0ADMIN>"]:
        assert mention not in everything
    assert "&lt;!channel&gt;" in everything and "&amp;" in everything
    assert slack.requests[-1]["params"]["link_names"] in (False, 0, "0")


def test_excerpt_is_redacted_and_at_most_500_characters(slack, store):
    store_case(store, "oncall", body="My card 4111 1111 1111 1111 failed. " + "x" * 2000)
    send(sender(slack, store), store)
    blocks = posted_blocks(slack)
    assert "4111" not in json.dumps(blocks) and "[CARD]" in json.dumps(blocks)
    [quoted] = blocks_showing(blocks, ">My card")
    assert len(quoted["text"]["text"]) <= 1 + 500


def test_follow_ups_are_threaded_and_a_rise_in_urgency_is_a_new_top_level_alert(slack, store):
    s = sender(slack, store)
    for urgency in ("high", "high", "urgent", "high"):
        store_case(store, "oncall", conversation="conv-7", urgency=urgency)
        assert send(s, store).status == "sent"
    store_case(store, "oncall", conversation="conv-8")
    send(s, store)
    top = slack.top_level("#support-urgent")
    assert len(top) == 3  # conv-7's first alert, its escalation, conv-8's first alert
    first, escalation, other = top
    assert (
        escalation["blocks"][0]["text"]["text"]
        == ":rotating_light: Escalated: URGENT · outage · unknown customer"
    )
    follow_up = slack.replies("#support-urgent", first["ts"])[0]
    assert follow_up["blocks"][0]["text"]["text"] == ":warning: Follow-up: HIGH · outage · unknown customer"
    assert f"p{first['ts'].replace('.', '')}" in json.dumps(escalation["blocks"])  # links the thread
    assert len(slack.replies("#support-urgent", first["ts"])) == 2  # the two follow-ups
    assert other["thread_ts"] is None or other["thread_ts"] == other["ts"]


def test_repeat_interval_broadcasts_a_follow_up_to_the_channel(slack, store):
    s = sender(slack, store)
    store_case(store, "oncall", conversation="c", repeat_interval_s=3600)
    store_case(store, "oncall", conversation="c", repeat_interval_s=3600)
    store_case(store, "oncall", conversation="d", repeat_interval_s=0)
    store_case(store, "oncall", conversation="d", repeat_interval_s=0)
    for _ in range(4):
        send(s, store)
    replies = [
        m for m in slack.messages_in("#support-urgent") if m.get("thread_ts") and m["thread_ts"] != m["ts"]
    ]
    assert [bool(m.get("reply_broadcast")) for m in replies] == [False, True]


def test_429_gives_back_the_delivery_with_retry_after(slack, store):
    slack.fail_next(429, count=5, retry_after=7)
    store_case(store, "oncall")
    outcome = send(sender(slack, store), store)
    assert isinstance(outcome, DeliveryFailed) and outcome.retry_after_s == 7
    assert slack.messages_in("#support-urgent") == []


def test_a_delivery_already_posted_before_a_crash_is_not_posted_again(slack, store):
    s = sender(slack, store)
    store_case(store, "oncall")
    send(s, store)  # posted; now pretend the process died before marking it sent
    with store.session() as session:
        session.execute(update(DeliveryRow).values(status="sending", claimed_at=DeliveryRow.created_at))
    again, outcome = resend_after_restart(s, store)
    assert again.attempts == 2
    assert isinstance(outcome, Outcome) and "found in the channel" in outcome.detail
    assert len(slack.messages_in("#support-urgent")) == 1


def test_a_follow_up_posted_before_a_crash_is_found_in_its_thread(slack, store):
    s = sender(slack, store)
    store_case(store, "oncall", conversation="c")
    send(s, store)
    store_case(store, "oncall", conversation="c")
    send(s, store)
    with store.session() as session:
        session.execute(update(DeliveryRow).where(DeliveryRow.id == 2).values(status="sending"))
    assert "found" in resend_after_restart(s, store)[1].detail
    assert len(slack.messages_in("#support-urgent")) == 2


def resend_after_restart(s, store):
    """A restarted worker takes over the in-doubt delivery (its lease is over) and sends it."""
    [again] = store.claim_deliveries("oncall", "restarted", 1, timedelta(seconds=-1))
    [outcome] = s.send_batch([again])
    store.finish_deliveries([DeliveryUpdate(again.id, outcome.status, outcome.detail)])
    return again, outcome


def crash_after_posting(store, delivery_id: int, forget_thread: bool = False) -> None:
    """What a kill -9 between chat.postMessage and the store's update leaves behind."""
    with store.session() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == delivery_id)
            .values(status="sending", claimed_at=DeliveryRow.created_at)
        )
        if forget_thread:
            session.execute(delete(SlackThreadRow))


def test_a_thread_opened_just_before_a_crash_still_gets_the_follow_ups(slack, store):
    s = sender(slack, store)
    first = store_case(store, "oncall", conversation="conv-k")
    send(s, store)
    crash_after_posting(store, first.id, forget_thread=True)  # died before saving the thread
    assert "found in the channel" in resend_after_restart(s, store)[1].detail
    store_case(store, "oncall", conversation="conv-k")
    send(s, store)
    [parent] = slack.top_level("#support-urgent")
    assert len(slack.replies("#support-urgent", parent["ts"])) == 1


def test_the_crash_lookup_reads_past_the_first_page_of_history(slack, store):
    s = sender(slack, store)
    first = store_case(store, "oncall", conversation="conv-old")
    send(s, store)
    client = make_client("xoxb-test", slack.base_url)
    for n in range(205):  # other traffic in the channel pushes the alert off the first page
        client.chat_postMessage(channel="#support-urgent", text=f"chatter {n}")
    crash_after_posting(store, first.id, forget_thread=True)
    assert "found in the channel" in resend_after_restart(s, store)[1].detail
    assert len(slack.top_level("#support-urgent")) == 206


def test_a_slack_500_goes_back_to_the_queue_and_is_posted_once(slack, store):
    s = sender(slack, store)
    store_case(store, "oncall")
    slack.fail_next(500)
    assert isinstance(send(s, store), DeliveryFailed)  # a 5xx may have been posted: not retried blind
    with store.session() as session:
        session.execute(update(DeliveryRow).values(status="pending", not_before=None))
    assert send(s, store).status == "sent"
    assert len(slack.messages_in("#support-urgent")) == 1


def test_one_rate_limited_channel_does_not_hold_back_another(slack, store):
    slack.rate_limit_per_channel_s = 1.0
    client = make_client("xoxb-test", slack.base_url)
    senders = {"busy": SlackSender(client, "#busy", store), "quiet": SlackSender(client, "#quiet", store)}
    for i in range(4):
        store_case(store, "busy", conversation=f"b{i}")
    store_case(store, "quiet", conversation="q")
    outbox = Outbox(store, senders, "test", timedelta(seconds=60), idle_wait_s=0.05)
    outbox.start()
    try:
        deadline = time.monotonic() + 3
        while not slack.messages_in("#quiet") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slack.messages_in("#quiet") and len(slack.messages_in("#busy")) < 4  # busy is still waiting
        deadline = time.monotonic() + 30
        while len(slack.messages_in("#busy")) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        outbox.stop()
    assert len(slack.messages_in("#busy")) == 4 and slack.rejected_429 > 0  # every alert, once, despite 429s
    ids = [m["metadata"]["event_payload"]["delivery_id"] for m in slack.messages]
    assert len(ids) == len(set(ids)) == 5
    assert store.count_due() == 0
    assert not any(t.name.startswith("outbox-") for t in threading.enumerate())


def test_a_bad_token_fails_fast_with_one_line(slack):
    with pytest.raises(SlackConfigError, match="invalid_auth"):
        check_token(make_client("xoxb-wrong", slack.base_url))
    check_token(make_client("xoxb-test", slack.base_url))
