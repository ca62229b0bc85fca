"""A local server speaking Slack's Web API wire format, for the real `slack_sdk.WebClient`.

Use `WebClient(token="xoxb-test", base_url=fake.base_url)`. slack_sdk always POSTs to `/api/<method>`:
chat.postMessage as a JSON body (blocks a list, metadata an object, booleans true/false), the other
methods as a form body (booleans "1"/"0"), even the "GET" ones; the token comes as `Authorization: Bearer`.
Both bodies, a query string and a `token` parameter are accepted, as Slack does.
`apps.connections.open` takes only an app-level token (`xapp-...`) and answers the URL of the Socket
Mode stand-in set in `socket_mode` (tests/fakes/slack_socket.py); app tokens work for nothing else.
"""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.local_server import Answer, LocalJSONServer

Json = dict[str, Any]
BOT = {"user": "U0BOT", "bot_id": "B0BOT", "team": "T0TEST"}
FAILURE_ERRORS = {429: "ratelimited", 503: "service_unavailable"}


def ok(**fields: Any) -> Answer:
    return 200, {}, {"ok": True, **fields}


def err(code: str) -> Answer:
    return 200, {}, {"ok": False, "error": code}


def flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def parsed(value: Any) -> Any:
    """blocks/metadata arrive as JSON strings in a form body and as JSON values in a JSON body."""
    return (json.loads(value) if isinstance(value, str) and value else value) or None


def within(p: Json, ts: str) -> bool:
    """Slack's oldest/latest/inclusive filter on a message ts."""
    oldest, latest, t = Decimal(p.get("oldest") or 0), Decimal(p.get("latest") or "Infinity"), Decimal(ts)
    return oldest <= t <= latest if flag(p.get("inclusive")) else oldest < t < latest


def page_of(found: list[Json], p: Json) -> Answer:
    """Cursor pagination: `limit` per page, next_cursor until the last page."""
    start, limit = int(p.get("cursor") or 0), int(p.get("limit") or 100)
    more = len(found) > start + limit
    cursor = str(start + limit) if more else ""
    return ok(messages=found[start : start + limit], has_more=more, response_metadata={"next_cursor": cursor})


class FakeSlack(LocalJSONServer):
    def __init__(self) -> None:
        super().__init__()
        self.valid_tokens: set[str] = {"xoxb-test"}
        self.app_tokens: set[str] = {"xapp-test"}
        self.socket_mode: Any = None  # a FakeSocketMode: what apps.connections.open hands out
        self.messages: list[Json] = []  # channel, ts, thread_ts, text, blocks, metadata, reply_broadcast
        self.requests: list[Json] = []  # method, params, token, content_type
        self.updates: list[Json] = []  # chat.update calls that changed a message: channel, ts, text, at
        self.rate_limit_per_channel_s: float | None = None
        self._last_post: dict[str, float] = {}
        self._clock_us = 0

    @property
    def base_url(self) -> str:
        return f"{self.address}/api/"

    def env(self) -> dict[str, str]:
        """The TRIAGE_ settings that point a worker at this stand-in (with a valid bot token)."""
        return {"TRIAGE_SLACK__TOKEN": "xoxb-test", "TRIAGE_SLACK__BASE_URL": self.base_url}

    def messages_in(self, channel: str) -> list[Json]:
        with self._lock:
            return [m for m in self.messages if m["channel"] == channel]

    def top_level(self, channel: str) -> list[Json]:
        return [m for m in self.messages_in(channel) if m["thread_ts"] is None]

    def replies(self, channel: str, thread_ts: str) -> list[Json]:
        return [m for m in self.messages_in(channel) if m["thread_ts"] == thread_ts]

    def handle(self, method: str, params: Json, token: str | None, ctype: str) -> Answer:
        with self._lock:
            self.requests.append({"method": method, "params": params, "token": token, "content_type": ctype})
            failure = self._scripted_failure() if method == "chat.postMessage" else None
            if failure:
                status, headers = failure
                return status, headers, {"ok": False, "error": FAILURE_ERRORS.get(status, "fatal_error")}
            handler = {
                "auth.test": self._auth_test,
                "chat.postMessage": self._post_message,
                "chat.update": self._update_message,
                "conversations.history": self._history,
                "conversations.replies": self._replies,
                "chat.getPermalink": self._permalink,
                "apps.connections.open": self._connections_open,
            }.get(method)
            if handler is None:
                return err("unknown_method")
            if not token:
                return err("not_authed")
            app_method = method == "apps.connections.open"
            if token.startswith("xapp-") != app_method:
                return err("not_allowed_token_type")
            if token not in (self.app_tokens if app_method else self.valid_tokens):
                return err("invalid_auth")
            return handler(params)

    def _connections_open(self, _params: Json) -> Answer:
        if self.socket_mode is None:
            return err("socket_mode_not_enabled")
        return ok(url=self.socket_mode.new_url())

    def _auth_test(self, _params: Json) -> Answer:
        return ok(url="https://example.slack.com/", user_id=BOT["user"], **BOT)

    def _post_message(self, p: Json) -> Answer:
        channel = p.get("channel")
        if not channel:
            return err("channel_not_found")
        if not p.get("text") and not p.get("blocks"):
            return err("no_text")
        try:
            blocks, metadata = parsed(p.get("blocks")), parsed(p.get("metadata"))
        except json.JSONDecodeError:
            return err("invalid_arguments")
        now, last = time.monotonic(), self._last_post.get(channel)
        if self.rate_limit_per_channel_s and last is not None and now - last < self.rate_limit_per_channel_s:
            self.rejected_429 += 1
            wait = max(1, math.ceil(self.rate_limit_per_channel_s - (now - last)))
            return 429, {"Retry-After": str(wait)}, {"ok": False, "error": "ratelimited"}
        self._last_post[channel] = now
        self._clock_us = max(self._clock_us + 1, time.time_ns() // 1000)  # Slack's ts is the post time
        message = {
            "channel": channel,
            "ts": f"{self._clock_us // 1_000_000}.{self._clock_us % 1_000_000:06d}",
            "thread_ts": p.get("thread_ts") or None,
            "text": p.get("text") or "",
            "blocks": blocks,
            "metadata": metadata,
            "reply_broadcast": flag(p.get("reply_broadcast")),
        }
        self.messages.append(message)
        return ok(channel=channel, ts=message["ts"], message=self._view(message))

    def _update_message(self, p: Json) -> Answer:
        """As Slack: a message of this app, found by channel and ts, takes the new text and blocks."""
        channel, ts = p.get("channel"), p.get("ts")
        if not p.get("text") and not p.get("blocks"):
            return err("no_text")
        found = [m for m in self.messages if m["channel"] == channel and m["ts"] == ts]
        if not found:
            return err("message_not_found")
        try:
            blocks = parsed(p.get("blocks"))
        except json.JSONDecodeError:
            return err("invalid_arguments")
        found[0].update(text=p.get("text") or "", blocks=blocks)
        self.updates.append({"channel": channel, "ts": ts, "text": found[0]["text"], "at": time.monotonic()})
        return ok(channel=channel, ts=ts, text=found[0]["text"])

    def _view(self, m: Json) -> Json:
        """A message as Slack shows it: no thread_ts unless threaded; a parent with replies gets its own."""
        out = {"type": "message", "user": BOT["user"], "bot_id": BOT["bot_id"], "ts": m["ts"]}
        out["text"] = m["text"]
        replies = [r for r in self.messages if r["channel"] == m["channel"] and r["thread_ts"] == m["ts"]]
        if m["thread_ts"]:
            out["thread_ts"] = m["thread_ts"]
            if m["reply_broadcast"]:
                out["subtype"] = "thread_broadcast"
        elif replies:
            out.update(thread_ts=m["ts"], reply_count=len(replies))
        return out | {key: m[key] for key in ("blocks", "metadata") if m[key]}

    def _history(self, p: Json) -> Answer:
        """As Slack: top-level messages and broadcast replies, newest first; see conversations.replies."""
        channel = p.get("channel")
        if not channel:
            return err("channel_not_found")
        found = [
            self._view(m)
            for m in reversed(self.messages)
            if m["channel"] == channel and within(p, m["ts"]) and (not m["thread_ts"] or m["reply_broadcast"])
        ]
        return page_of(found, p)

    def _replies(self, p: Json) -> Answer:
        """As Slack: the parent first (always), then the replies inside oldest/latest, oldest first."""
        channel, ts = p.get("channel"), p.get("ts")
        thread = [m for m in self.messages if m["channel"] == channel and ts in (m["ts"], m["thread_ts"])]
        if not thread or thread[0]["ts"] != ts:
            return err("thread_not_found")
        return page_of([self._view(thread[0])] + [self._view(m) for m in thread[1:] if within(p, m["ts"])], p)

    def _permalink(self, p: Json) -> Answer:
        channel, ts = p.get("channel"), p.get("message_ts")
        found = [m for m in self.messages if m["channel"] == channel and m["ts"] == ts]
        if not found:
            return err("message_not_found")
        link = f"https://example.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        if found[0]["thread_ts"]:
            link += f"?thread_ts={found[0]['thread_ts']}&cid={channel}"
        return ok(channel=channel, permalink=link)

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        url = urlsplit(path)
        params: Json = dict(parse_qsl(url.query, keep_blank_values=True))
        lowered = {k.lower(): v for k, v in headers.items()}
        content_type = lowered.get("content-type", "")
        if raw and content_type.startswith("application/json"):
            params.update(json.loads(raw))
        elif raw:
            params.update(parse_qsl(raw.decode(), keep_blank_values=True))
        auth = lowered.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else params.pop("token", None)
        if not url.path.startswith("/api/"):
            return 404, {}, {"ok": False, "error": "unknown_method"}
        return self.handle(url.path[5:], params, token, content_type)
