"""The fake servers, driven by the real clients: slack_sdk's WebClient and the standard library's urllib."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from tests.fakes.slack_server import FakeSlack
from tests.fakes.zendesk_server import FakeZendesk

METADATA = {"event_type": "triage_alert", "event_payload": {"message_id": "m-1", "urgency": "high"}}
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Urgent* refund"}}]


def client(fake: FakeSlack, token: str = "xoxb-test", **kwargs: Any) -> WebClient:
    return WebClient(token=token, base_url=fake.base_url, timeout=5, **kwargs)


def test_slack_auth(slack: FakeSlack) -> None:
    assert client(slack).auth_test()["user_id"] == "U0BOT"
    with pytest.raises(SlackApiError) as caught:
        client(slack, token="xoxb-wrong").auth_test()
    assert caught.value.response["error"] == "invalid_auth"


def test_slack_post_thread_history_and_permalink(slack: FakeSlack) -> None:
    web = client(slack)
    parent = web.chat_postMessage(channel="C1", text="Urgent refund", blocks=BLOCKS, metadata=METADATA)
    reply = web.chat_postMessage(channel="C1", text="details", thread_ts=parent["ts"])
    assert parent["message"]["metadata"] == METADATA and float(reply["ts"]) > float(parent["ts"])
    assert slack.requests[1]["content_type"].startswith("application/json")  # slack_sdk posts JSON
    assert slack.top_level("C1")[0]["blocks"] == BLOCKS
    assert [m["text"] for m in slack.replies("C1", parent["ts"])] == ["details"]

    history = web.conversations_history(channel="C1", include_all_metadata=True, limit=10)
    assert [m["ts"] for m in history["messages"]] == [parent["ts"]]  # replies live in the thread only
    assert history["messages"][0]["metadata"] == METADATA
    assert history["messages"][0]["reply_count"] == 1
    thread = web.conversations_replies(channel="C1", ts=parent["ts"])
    assert [m["text"] for m in thread["messages"]] == ["Urgent refund", "details"]
    link = web.chat_getPermalink(channel="C1", message_ts=parent["ts"])["permalink"]
    assert link == f"https://example.slack.com/archives/C1/p{parent['ts'].replace('.', '')}"


def test_slack_form_body_and_errors(slack: FakeSlack) -> None:
    web = client(slack)
    data = {"channel": "C2", "text": "hi", "blocks": json.dumps(BLOCKS), "metadata": json.dumps(METADATA)}
    web.api_call("chat.postMessage", data=data)
    assert slack.messages[0]["blocks"] == BLOCKS and slack.messages[0]["metadata"] == METADATA
    for method, params, error in [
        ("chat.postMessage", {"text": "no channel"}, "channel_not_found"),
        ("nope.nothing", {}, "unknown_method"),
    ]:
        with pytest.raises(SlackApiError) as caught:
            web.api_call(method, json=params)
        assert caught.value.response["error"] == error


def test_slack_rate_limit_is_a_429_with_retry_after(slack: FakeSlack) -> None:
    slack.rate_limit_per_channel_s = 30
    web = client(slack)
    web.chat_postMessage(channel="C1", text="first")
    web.chat_postMessage(channel="C2", text="other channel is fine")
    with pytest.raises(SlackApiError) as caught:
        web.chat_postMessage(channel="C1", text="too soon")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "30"
    assert caught.value.response["error"] == "ratelimited"
    assert slack.rejected_429 == 1 and len(slack.messages) == 2


def test_slack_retry_handler_gets_through_one_429(slack: FakeSlack) -> None:
    slack.fail_next(429, retry_after=1)
    web = client(slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    started = time.monotonic()
    assert web.chat_postMessage(channel="C1", text="eventually")["ok"]
    assert time.monotonic() - started >= 1
    assert slack.rejected_429 == 1 and len(slack.messages) == 1 and len(slack.requests) == 2


def test_slack_scripted_server_error(slack: FakeSlack) -> None:
    slack.fail_next(503, count=2)
    web = client(slack)
    for _ in range(2):
        with pytest.raises(SlackApiError) as caught:
            web.chat_postMessage(channel="C1", text="down")
        assert caught.value.response.status_code == 503
    assert web.chat_postMessage(channel="C1", text="up")["ok"]


def zd(
    fake: FakeZendesk, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    credentials = f"{fake.email}/token:{token or fake.api_token}".encode()
    request = urllib.request.Request(
        fake.base_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.load(error)


def test_zendesk_update_and_comments(zendesk: FakeZendesk) -> None:
    assert zd(zendesk, "GET", "/api/v2/users/me.json")[2]["user"]["role"] == "agent"
    zendesk.tickets[42] = {"id": 42, "priority": "normal", "tags": ["vip"]}
    update = {
        "ticket": {
            "priority": "urgent",
            "additional_tags": ["triage"],
            "comment": {"body": "Refund?", "public": False},
        }
    }
    status, _, answer = zd(zendesk, "PUT", "/api/v2/tickets/42.json", update)
    assert status == 200 and answer["ticket"]["priority"] == "urgent"
    assert answer["ticket"]["tags"] == ["vip", "triage"]
    zd(zendesk, "PUT", "/api/v2/tickets/42.json", {"ticket": {"tags": ["only"]}})
    assert zendesk.tickets[42]["tags"] == ["only"]
    status, _, listing = zd(zendesk, "GET", "/api/v2/tickets/42/comments.json")
    assert status == 200 and listing["next_page"] is None
    assert [(c["body"], c["public"]) for c in listing["comments"]] == [("Refund?", False)]
    assert zendesk.requests[1]["json"] == update and zendesk.requests[1]["method"] == "PUT"


def test_zendesk_auth_and_ids(zendesk: FakeZendesk) -> None:
    assert zd(zendesk, "GET", "/api/v2/users/me.json", token="wrong")[:3:2] == (
        401,
        {"error": "Couldn't authenticate you"},
    )
    assert (
        zd(zendesk, "PUT", "/api/v2/tickets/7.json", {"ticket": {"priority": "high"}})[0] == 200
    )  # auto-created
    zendesk.strict_ids = True
    assert zd(zendesk, "PUT", "/api/v2/tickets/8.json", {"ticket": {"priority": "high"}})[0] == 404
    assert zd(zendesk, "PUT", "/api/v2/tickets/7.json", {"ticket": {"priority": "asap"}})[0] == 422


def test_zendesk_429s(zendesk: FakeZendesk) -> None:
    zendesk.fail_next(429, retry_after=7)
    status, headers, _ = zd(zendesk, "PUT", "/api/v2/tickets/7.json", {"ticket": {"priority": "low"}})
    assert (status, headers["Retry-After"]) == (429, "7")
    zendesk.rate_limit_per_s = 60
    assert zd(zendesk, "PUT", "/api/v2/tickets/7.json", {"ticket": {"priority": "low"}})[0] == 200
    status, headers, _ = zd(zendesk, "PUT", "/api/v2/tickets/7.json", {"ticket": {"priority": "normal"}})
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60
    assert zendesk.rejected_429 == 2 and zendesk.tickets[7]["priority"] == "low"
