import json
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


def test_alert_has_the_case_in_block_kit(slack, store):
    store_case(
        store,
        "oncall",
        body="Checkout returns 503 for all users",
        customer={"name": "Dana", "tier": "enterprise"},
        ticket={"id": 48211, "url": "https://acme.zendesk.com/agent/tickets/48211"},
        channel="email",
    )
    assert send(sender(slack, store), store).status == "sent"
    [posted] = slack.messages_in("#support-urgent")
    text = json.dumps(posted["blocks"], ensure_ascii=False)
    for expected in (
        "HIGH",
        "negative",
        "Dana",
        "enterprise",
        "Checkout returns 503",
        "email",
        "test · 80%",
        "https://acme.zendesk.com/agent/tickets/48211|Ticket 48211",
    ):
        assert expected in text
    assert posted["metadata"]["event_type"] == "triage_alert"


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
    context = json.dumps(slack.messages_in("#support-urgent")[0]["blocks"])
    assert "4111" not in context and "[CARD]" in context
    excerpt = slack.messages_in("#support-urgent")[0]["blocks"][3]["elements"][0]["text"]
    assert len(excerpt) <= 500


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
    assert "Escalated: URGENT" in escalation["blocks"][0]["text"]["text"]
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
